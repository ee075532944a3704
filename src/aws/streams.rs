//! DynamoDB Streams: the state table's stream, read-only (docs/architecture.md#stream).
//!
//! `DescribeStream` (every page), `GetShardIterator` and `GetRecords`, answered in plain data.
//! The calls spend a budget of their own, never the state table's: the stream must not slow the
//! presence pass, nor the presence pass the stream.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodbstreams as streams;
use streams::types::{AttributeValue, ShardIteratorType};

use super::pages::all_pages;
use super::{Api, AwsError};
use crate::model::stream::{Shard, StreamEvent, StreamRecord};

const SERVICE: &str = "dynamodb";

/// The stream's own budget, per target: a second's `GetRecords` for every shard of a busy
/// table, and its iterators, well under what DynamoDB Streams allows (5 `GetRecords` a second
/// per shard).
pub const REQUESTS_PER_SECOND: f64 = 10.0;

/// The most records one `GetRecords` call answers.
pub const RECORDS_PER_CALL: i32 = 1000;

/// The error code of an iterator older than 15 minutes: ask for a new one from the checkpoint.
pub const EXPIRED_ITERATOR: &str = "ExpiredIteratorException";
/// The error code of a position older than the stream's trim horizon (24 hours): the records
/// between are gone.
pub const TRIMMED_DATA: &str = "TrimmedDataAccessException";

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The oldest record the shard still holds.
    TrimHorizon,
    /// Just after this sequence number (a checkpoint).
    After(String),
}

/// One `GetRecords` answer: the records, and the iterator to go on with (none once a closed
/// shard is read to its end).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub records: Vec<StreamRecord>,
    pub next: Option<String>,
}

/// The stream calls the tailer makes, as [`Streams`] makes them; a test answers them from
/// memory.
pub trait StreamReads: Send + Sync {
    /// Every shard of the stream (all pages of `DescribeStream`). Whether the table has a
    /// stream, and its view type, come from `DescribeTable` ([`super::dynamodb::Dynamo::stream_of`]).
    fn shards(&self, stream_arn: &str)
    -> impl Future<Output = Result<Vec<Shard>, AwsError>> + Send;

    /// An iterator for `shard` at `position`.
    fn iterator(
        &self,
        stream_arn: &str,
        shard: &str,
        position: &Position,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// The next records of an iterator, read from `shard`.
    fn records(
        &self,
        shard: &str,
        iterator: &str,
    ) -> impl Future<Output = Result<Batch, AwsError>> + Send;
}

/// A DynamoDB Streams client that answers in plain data.
#[derive(Debug, Clone)]
pub struct Streams {
    client: streams::Client,
    api: Api,
}

impl Streams {
    pub fn new(config: &aws_config::SdkConfig, api: Api) -> Self {
        let config = streams::config::Builder::from(config).build();
        Streams {
            client: streams::Client::from_conf(config),
            api,
        }
    }

    /// Sends nothing while `gate` is closed.
    pub fn set_gate(&mut self, gate: std::sync::Arc<crate::aws::gate::Gate>) {
        self.api.set_gate(gate);
    }
}

impl StreamReads for Streams {
    async fn shards(&self, stream_arn: &str) -> Result<Vec<Shard>, AwsError> {
        const OP: &str = "DescribeStream";
        all_pages(SERVICE, OP, |start: Option<String>| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_stream()
                        .stream_arn(stream_arn)
                        .set_exclusive_start_shard_id(start.clone())
                        .send()
                })
                .await
                .map_err(|err| for_stream(err, stream_arn))?;
            let Some(description) = out.stream_description() else {
                return Err(AwsError::unexpected(
                    SERVICE,
                    OP,
                    format!("no StreamDescription in the answer for stream {stream_arn}"),
                ));
            };
            let shards = description
                .shards()
                .iter()
                .map(|shard| {
                    let range = shard.sequence_number_range();
                    Ok(Shard {
                        id: shard
                            .shard_id()
                            .ok_or_else(|| {
                                AwsError::unexpected(
                                    SERVICE,
                                    OP,
                                    format!("a shard without ShardId in stream {stream_arn}"),
                                )
                            })?
                            .to_string(),
                        parent: shard.parent_shard_id().map(str::to_string),
                        starting_sequence: range
                            .and_then(|r| r.starting_sequence_number())
                            .map(str::to_string),
                        ending_sequence: range
                            .and_then(|r| r.ending_sequence_number())
                            .map(str::to_string),
                    })
                })
                .collect::<Result<Vec<Shard>, AwsError>>()?;
            let next = description
                .last_evaluated_shard_id()
                .filter(|id| !id.is_empty())
                .map(str::to_string);
            Ok((shards, next))
        })
        .await
    }

    async fn iterator(
        &self,
        stream_arn: &str,
        shard: &str,
        position: &Position,
    ) -> Result<String, AwsError> {
        const OP: &str = "GetShardIterator";
        let (kind, sequence) = match position {
            Position::TrimHorizon => (ShardIteratorType::TrimHorizon, None),
            Position::After(sequence) => (
                ShardIteratorType::AfterSequenceNumber,
                Some(sequence.clone()),
            ),
        };
        let out = self
            .api
            .call(OP, || {
                self.client
                    .get_shard_iterator()
                    .stream_arn(stream_arn)
                    .shard_id(shard)
                    .shard_iterator_type(kind.clone())
                    .set_sequence_number(sequence.clone())
                    .send()
            })
            .await
            .map_err(|err| for_shard(err, shard))?;
        out.shard_iterator().map(str::to_string).ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                OP,
                format!("no ShardIterator in the answer for shard {shard}"),
            )
        })
    }

    async fn records(&self, shard: &str, iterator: &str) -> Result<Batch, AwsError> {
        const OP: &str = "GetRecords";
        let out = self
            .api
            .call(OP, || {
                self.client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(RECORDS_PER_CALL)
                    .send()
            })
            .await
            .map_err(|err| for_shard(err, shard))?;
        let records = out
            .records()
            .iter()
            .map(|record| stream_record(shard, record))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|message| {
                AwsError::unexpected(SERVICE, OP, format!("{message} (in shard {shard})"))
            })?;
        Ok(Batch {
            records,
            next: out
                .next_shard_iterator()
                .filter(|next| !next.is_empty())
                .map(str::to_string),
        })
    }
}

fn for_stream(mut err: AwsError, stream_arn: &str) -> AwsError {
    err.message = format!("{} (for stream {stream_arn})", err.message);
    err
}

fn for_shard(mut err: AwsError, shard: &str) -> AwsError {
    err.message = format!("{} (for shard {shard})", err.message);
    err
}

/// One SDK record in plain data; a record without its sequence number, event or key is an
/// error, never a record skipped unseen.
fn stream_record(shard: &str, record: &streams::types::Record) -> Result<StreamRecord, String> {
    let event = record
        .event_name()
        .and_then(|name| StreamEvent::parse(name.as_str()))
        .ok_or("a record without a known eventName")?;
    let data = record
        .dynamodb()
        .ok_or("a record without its dynamodb part")?;
    let sequence = data
        .sequence_number()
        .ok_or("a record without SequenceNumber")?
        .to_string();
    let created_millis = data
        .approximate_creation_date_time()
        .map(|at| at.to_millis().unwrap_or(0))
        .unwrap_or(0);
    let image =
        |image: Option<&HashMap<String, AttributeValue>>| image.map(from_stream_item).transpose();
    Ok(StreamRecord {
        shard: shard.to_string(),
        sequence,
        event,
        created_millis,
        keys: image(data.keys())?.ok_or("a record without Keys")?,
        old_image: image(data.old_image())?,
        new_image: image(data.new_image())?,
    })
}

super::attribute_conversion!(from_stream_item, from_stream);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::item::AttrValue;
    use streams::types::{OperationType, Record};

    fn sdk_record(event: OperationType, sequence: Option<&str>) -> Record {
        let mut data = streams::types::StreamRecord::builder()
            .keys("name", AttributeValue::S("web-1".into()))
            .old_image("name", AttributeValue::S("web-1".into()))
            .old_image(
                "listeners",
                AttributeValue::L(vec![AttributeValue::N("443".into())]),
            )
            .approximate_creation_date_time(aws_smithy_types::DateTime::from_secs(1_700_000_000));
        if let Some(sequence) = sequence {
            data = data.sequence_number(sequence);
        }
        Record::builder()
            .event_name(event)
            .dynamodb(data.build())
            .build()
    }

    #[test]
    fn a_record_keeps_both_images_with_their_types() {
        let record = stream_record(
            "shard-1",
            &sdk_record(OperationType::Remove, Some("1100000000017454423009")),
        )
        .unwrap();
        assert_eq!(record.event, StreamEvent::Remove);
        assert_eq!(record.created_millis, 1_700_000_000_000);
        assert_eq!(record.name(), Some("web-1"));
        assert_eq!(
            record.old_image.unwrap()["listeners"],
            AttrValue::L(vec![AttrValue::N("443".into())])
        );
        assert_eq!(record.new_image, None);
    }

    #[test]
    fn a_record_without_its_sequence_number_is_an_error_not_skipped() {
        let err = stream_record("shard-1", &sdk_record(OperationType::Insert, None)).unwrap_err();
        assert!(err.contains("SequenceNumber"), "{err}");
    }
}

//! S3, for the snapshot store.

use aws_sdk_s3 as s3;
use aws_smithy_types::byte_stream::ByteStream;

use super::pages::{all_pages, token};
use super::{Api, AwsError};

const SERVICE: &str = "s3";

/// An S3 client that answers in plain data.
#[derive(Debug, Clone)]
pub struct S3 {
    client: s3::Client,
    api: Api,
}

impl S3 {
    /// Path-style addressing is used when an endpoint override is set (an S3-compatible server
    /// on a host name that has no bucket subdomains); AWS itself gets virtual-hosted style.
    /// Sends nothing while `gate` is closed.
    pub fn set_gate(&mut self, gate: std::sync::Arc<crate::aws::gate::Gate>) {
        self.api.set_gate(gate);
    }

    pub fn new(config: &aws_config::SdkConfig, api: Api) -> Self {
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let config = s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        S3 {
            client: s3::Client::from_conf(config),
            api,
        }
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        self.api
            .call("PutObject", || {
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/gzip")
                    .body(ByteStream::from(bytes.clone()))
                    .send()
            })
            .await
            .map(|_| ())
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, AwsError> {
        let out = self
            .api
            .call("GetObject", || {
                self.client.get_object().bucket(bucket).key(key).send()
            })
            .await?;
        out.body
            .collect()
            .await
            .map(|data| data.into_bytes().to_vec())
            .map_err(|err| {
                AwsError::unexpected(
                    SERVICE,
                    "GetObject",
                    format!("reading s3://{bucket}/{key}: {err}"),
                )
            })
    }

    /// Every key under `prefix` with its size, all pages; an error, never a partial list (the
    /// list drives the pruning of snapshots).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>, AwsError> {
        const OP: &str = "ListObjectsV2";
        all_pages(SERVICE, OP, |continuation: Option<String>| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .set_continuation_token(continuation.clone())
                        .send()
                })
                .await?;
            let keys = out
                .contents()
                .iter()
                .filter_map(|object| {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    object.key().map(|key| (key.to_string(), size))
                })
                .collect();
            // Any token is followed (an S3-compatible store may leave `IsTruncated` out); a list
            // said to be truncated without one is refused.
            match (out.is_truncated(), token(out.next_continuation_token())) {
                (Some(true), None) => Err(AwsError::unexpected(
                    SERVICE,
                    OP,
                    format!(
                        "s3://{bucket}/{prefix}: the list is truncated but names no continuation token: not a whole list"
                    ),
                )),
                (_, next) => Ok((keys, next)),
            }
        })
        .await
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), AwsError> {
        self.api
            .call("DeleteObject", || {
                self.client.delete_object().bucket(bucket).key(key).send()
            })
            .await
            .map(|_| ())
    }
}

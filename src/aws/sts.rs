//! STS: the account of the credentials a target's requests are signed with, the key of its API
//! budget (docs/architecture.md#budget).

use aws_sdk_sts as sts;

use super::{Api, AwsError};

const SERVICE: &str = "sts";
const OPERATION: &str = "GetCallerIdentity";

/// The account ID of the credentials of `config`, by `GetCallerIdentity` (a call every identity
/// may make: it needs no IAM permission).
pub async fn caller_account(config: &aws_config::SdkConfig, api: &Api) -> Result<String, AwsError> {
    let config = sts::config::Builder::from(config).build();
    let client = sts::Client::from_conf(config);
    let out = api
        .call(OPERATION, || client.get_caller_identity().send())
        .await?;
    out.account()
        .filter(|account| !account.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            AwsError::unexpected(SERVICE, OPERATION, "the answer named no account".into())
        })
}

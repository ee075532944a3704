//! One pagination policy for every paginated call of the edge: follow the page token until
//! there is none, and fail (never return what was read so far) when the API answers the token
//! it was just asked with, or pages without end. A partial list is never mistaken for a whole
//! one: a list drives the presence pass, the guard and the pruning of snapshots.

use std::future::Future;

use super::AwsError;

/// More pages than any real account answers: the API is looping.
pub const MAX_PAGES: usize = 100_000;
/// How many of the latest tokens a new one is checked against: a loop of pages shorter than
/// this is caught at once, a longer one by [`MAX_PAGES`].
const RECENT_TOKENS: usize = 16;

/// Every item of every page. `page(token)` asks for one page (`None`: the first) and answers
/// its items and the next page's token, `None` on the last page (an empty token is none). An
/// answer that is truncated but names no next token is for `page` to refuse.
pub async fn all_pages<T, K, F, Fut>(
    service: &'static str,
    operation: &'static str,
    mut page: F,
) -> Result<Vec<T>, AwsError>
where
    K: PartialEq + Clone + std::fmt::Debug,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<K>), AwsError>>,
{
    let mut items = Vec::new();
    let mut token: Option<K> = None;
    let mut recent: std::collections::VecDeque<K> = std::collections::VecDeque::new();
    for _ in 0..MAX_PAGES {
        let (mut batch, next) = page(token.clone()).await?;
        items.append(&mut batch);
        match next {
            None => return Ok(items),
            Some(next) if recent.contains(&next) => {
                return Err(AwsError::unexpected(
                    service,
                    operation,
                    format!(
                        "the API answered the same page token twice ({next:?}): not a whole list"
                    ),
                ));
            }
            Some(next) => {
                if recent.len() == RECENT_TOKENS {
                    recent.pop_front();
                }
                recent.push_back(next.clone());
                token = Some(next);
            }
        }
    }
    Err(AwsError::unexpected(
        service,
        operation,
        format!("more than {MAX_PAGES} pages: not a whole list"),
    ))
}

/// A string token as the SDKs answer it: an empty one is none.
pub fn token(next: Option<&str>) -> Option<String> {
    next.filter(|next| !next.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_token_is_an_error_not_a_partial_list() {
        let err = all_pages("elasticloadbalancing", "DescribeRules", |_token| async {
            Ok((vec![1], Some("same".to_string())))
        })
        .await
        .unwrap_err();
        assert!(err.message.contains("same page token"), "{err}");
        assert_eq!(err.operation, "DescribeRules");
    }

    #[tokio::test]
    async fn a_loop_of_tokens_is_an_error() {
        let pages = std::sync::Mutex::new(vec!["a", "b", "a"]);
        let err = all_pages(
            "elasticloadbalancing",
            "DescribeLoadBalancers",
            |_token: Option<String>| {
                let next = pages.lock().unwrap().remove(0).to_string();
                async move { Ok((vec![1], Some(next))) }
            },
        )
        .await
        .unwrap_err();
        assert!(err.message.contains("same page token"), "{err}");
    }

    #[tokio::test]
    async fn every_page_to_the_end() {
        let pages = std::sync::Mutex::new(vec![
            (vec![3], None),
            (vec![2], Some("b")),
            (vec![1], Some("a")),
        ]);
        let asked = std::sync::Mutex::new(Vec::new());
        let items: Vec<i32> = all_pages("s3", "ListObjectsV2", |token: Option<String>| {
            asked.lock().unwrap().push(token);
            let (items, next) = pages.lock().unwrap().pop().unwrap();
            async move { Ok((items, next.map(str::to_string))) }
        })
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
        assert_eq!(
            *asked.lock().unwrap(),
            vec![None, Some("a".to_string()), Some("b".to_string())]
        );
    }

    #[tokio::test]
    async fn a_failed_page_fails_the_whole_list() {
        let mut first = true;
        let result: Result<Vec<i32>, _> =
            all_pages("dynamodb", "Scan", |_token: Option<String>| {
                let answer = if first {
                    Ok((vec![1], Some("a".to_string())))
                } else {
                    Err(AwsError::unexpected("dynamodb", "Scan", "boom".into()))
                };
                first = false;
                async move { answer }
            })
            .await;
        assert!(result.is_err());
    }

    #[test]
    fn an_empty_token_is_none() {
        assert_eq!(token(Some("")), None);
        assert_eq!(token(None), None);
        assert_eq!(token(Some("a")), Some("a".to_string()));
    }
}

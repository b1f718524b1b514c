//! Exponential back-off for EC2 calls: throttling is retried inside every
//! call, capacity errors around a whole launch. The SDK's own retries are
//! off so this is the one policy, and tests can make it fast.

use std::future::Future;
use std::time::Duration;

use super::AwsError;

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first wait; each next one is twice as long.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Tries in all, the first included.
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(250),
            max: Duration::from_secs(20),
            attempts: 6,
        }
    }
}

impl Backoff {
    /// The wait before try `attempt` (1 is the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.max)
    }

    /// Runs `call` until it succeeds, fails with an error `retryable` refuses,
    /// or runs out of attempts.
    pub async fn run<T, F, Fut>(
        &self,
        retryable: impl Fn(&AwsError) -> bool,
        mut call: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if attempt < self.attempts && retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "retrying EC2 call");
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Every page of a paginated call: `call` gets the previous page's
    /// token (None first), each page is retried as [`Self::run`] does, and
    /// `next_token` says where the next page starts (None or empty: done).
    pub async fn pages<P, F, Fut>(
        &self,
        retryable: impl Fn(&AwsError) -> bool,
        mut call: F,
        next_token: impl Fn(&P) -> Option<&str>,
    ) -> Result<Vec<P>, AwsError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<P, AwsError>>,
    {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.run(&retryable, || call(token.clone())).await?;
            token = next_token(&page)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_max() {
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
            attempts: 5,
        };
        let delays: Vec<u128> = (1..=5).map(|a| backoff.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[tokio::test]
    async fn pages_follow_tokens_to_the_end_and_retry_a_throttled_page() {
        let backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(1),
            attempts: 3,
        };
        let mut asked: Vec<Option<String>> = Vec::new();
        let mut throttled = false;
        let pages = backoff
            .pages(
                AwsError::is_throttling,
                |token| {
                    asked.push(token.clone());
                    let throttle = token.as_deref() == Some("b") && !throttled;
                    throttled |= throttle;
                    async move {
                        if throttle {
                            return Err(AwsError::Api {
                                operation: "DescribeInstances",
                                code: "Throttling".into(),
                                message: String::new(),
                            });
                        }
                        let next = match token.as_deref() {
                            None => "b",
                            Some("b") => "c",
                            _ => "",
                        };
                        Ok((token, next.to_owned()))
                    }
                },
                |(_, next): &(Option<String>, String)| Some(next.as_str()),
            )
            .await
            .expect("every page");
        let tokens: Vec<Option<&str>> = pages.iter().map(|(t, _)| t.as_deref()).collect();
        assert_eq!(tokens, [None, Some("b"), Some("c")]);
        assert_eq!(asked.len(), 4, "page b asked twice: {asked:?}");
    }

    #[tokio::test]
    async fn throttling_is_retried_until_attempts_run_out() {
        let backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(1),
            attempts: 3,
        };
        let mut calls = 0;
        let result: Result<(), AwsError> = backoff
            .run(AwsError::is_throttling, || {
                calls += 1;
                async {
                    Err(AwsError::Api {
                        operation: "RunInstances",
                        code: "RequestLimitExceeded".into(),
                        message: String::new(),
                    })
                }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 3);
        let mut calls = 0;
        let result: Result<(), AwsError> = backoff
            .run(AwsError::is_throttling, || {
                calls += 1;
                async { Err(AwsError::Invalid("no AMI".into())) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "other errors are not retried");
    }
}

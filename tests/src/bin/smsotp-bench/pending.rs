//! Calls on smsotpd's D-Bus interface that the benchmark makes itself:
//! enrolling its users, and starting logins nobody answers.

use std::collections::HashMap;
use std::sync::Arc;

use smsotp_proto::{SmsOtp1Proxy, context_key};
use tokio::task::JoinSet;

use crate::setup::{Bench, number, user};

/// Calls in flight at once on the one connection.
const WINDOW: usize = 64;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

async fn proxy(bench: &Bench) -> Result<SmsOtp1Proxy<'static>, String> {
    let conn = zbus::connection::Builder::address(bench.bus.address().as_str())
        .map_err(|e| e.to_string())?
        .build()
        .await
        .map_err(|e| format!("cannot connect to the bench's bus: {e}"))?;
    SmsOtp1Proxy::new(&conn).await.map_err(|e| e.to_string())
}

/// Enrolls bench users `range`, each with their own number.
pub fn enroll(bench: &Bench, range: std::ops::Range<usize>) -> Result<(), String> {
    runtime()?.block_on(async {
        let p = Arc::new(proxy(bench).await?);
        let mut set = JoinSet::new();
        for i in range {
            if set.len() >= WINDOW {
                set.join_next().await.ok_or("no task")?.map_err(|e| e.to_string())??;
            }
            let p = p.clone();
            set.spawn(async move {
                p.enroll(&user(i), &number(i)).await.map(drop).map_err(|e| format!("enroll {}: {e}", user(i)))
            });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
}

/// Starts `n` logins (users of the pool, each from its own address) and
/// leaves them at the code prompt; how many the daemon took.
pub fn start_logins(bench: &Bench, n: usize, pool: usize) -> Result<usize, String> {
    runtime()?.block_on(async {
        let p = Arc::new(proxy(bench).await?);
        let mut set = JoinSet::new();
        let mut taken = 0;
        let mut first_error = None;
        let mut record = |r: Result<Result<(), String>, tokio::task::JoinError>| match r {
            Ok(Ok(())) => taken += 1,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        };
        for k in 0..n {
            if set.len() >= WINDOW
                && let Some(r) = set.join_next().await
            {
                record(r);
            }
            let p = p.clone();
            set.spawn(async move {
                let rhost = format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255);
                let context = HashMap::from([
                    (context_key::SERVICE, "sshd"),
                    (context_key::RHOST, rhost.as_str()),
                    (context_key::TTY, "ssh"),
                ]);
                p.start_login(&user(k % pool), context).await.map(drop).map_err(|e| e.to_string())
            });
        }
        while let Some(r) = set.join_next().await {
            record(r);
        }
        match first_error {
            Some(e) if taken == 0 => Err(format!("no login could be started: {e}")),
            Some(e) => {
                eprintln!("smsotp-bench: {} of {n} logins were refused, first: {e}", n - taken);
                Ok(taken)
            }
            None => Ok(taken),
        }
    })
}

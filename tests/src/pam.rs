//! The real libpam_sms.so driven by pamtester under bwrap, with a temporary
//! /etc/pam.d, answering prompts as a user would.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::tools::{built, require};

/// The PAM result, read from pamtester's last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Success,
    AuthErr,
    AuthinfoUnavail,
    MaxTries,
    PermDenied,
    ServiceErr,
    ConvErr,
    UserUnknown,
    /// pam_sms returned PAM_IGNORE (seen through the probe stack).
    Ignore,
    Other(String),
}

impl Code {
    fn from_line(line: &str) -> Code {
        match line.trim() {
            "pamtester: successfully authenticated" | "pamtester: sucessfully authenticated" => Code::Success,
            "pamtester: Authentication failure" => Code::AuthErr,
            "pamtester: Authentication service cannot retrieve authentication info" => Code::AuthinfoUnavail,
            "pamtester: Have exhausted maximum number of retries for service" => Code::MaxTries,
            "pamtester: Permission denied" => Code::PermDenied,
            "pamtester: Error in service module" => Code::ServiceErr,
            "pamtester: Conversation error" => Code::ConvErr,
            "pamtester: User not known to the underlying authentication module" => Code::UserUnknown,
            // The probe stack's second line: reached only when pam_sms ignored.
            "pamtester: User credentials expired" => Code::Ignore,
            other => Code::Other(other.to_owned()),
        }
    }
}

/// How pam_sms sits in the service file.
#[derive(Debug, Clone)]
pub enum Stack {
    /// `auth required pam_sms.so ARGS`, as the README tells admins.
    Required,
    /// Shows every return code: success ends the stack, ignore falls through
    /// to a line that fails with PAM_CRED_EXPIRED, anything else is returned.
    Probe,
    /// A whole stack; `@PAM_SMS@` stands for the module with its arguments.
    Custom(String),
}

/// Prompts shown so far: password and code prompts and the trust question.
fn prompts(text: &str) -> usize {
    text.matches(crate::PROMPT).count()
        + text.matches(crate::TRUST_PROMPT_END).count()
        + text.matches(crate::PASSWORD_PROMPT).count()
        + text.matches(crate::NUMBER_PROMPT_END).count()
        + text.matches(crate::FACTOR_PROMPT_MARK).count()
}

/// One answer typed at the n-th prompt ("SMS code: " or the trust question).
pub type Answer<'a> = Box<dyn FnOnce() -> String + 'a>;

pub fn typed<'a>(s: &str) -> Answer<'a> {
    let s = s.to_owned();
    Box::new(move || s)
}

#[derive(Debug)]
pub struct Run {
    pub code: Code,
    /// Everything pamtester printed, prompts and messages included.
    pub output: String,
    pub prompts: usize,
}

impl Run {
    /// The conversation text without pamtester's own lines.
    /// The prompt has no newline after it (echo is off and stdin is not a
    /// terminal), so pamtester's own lines may start mid-line.
    pub fn shown(&self) -> String {
        let mut out = String::new();
        for line in self.output.split_inclusive('\n') {
            let kept = match line.find("pamtester: ") {
                Some(i) => &line[..i],
                None => line,
            };
            if !kept.starts_with("auth=") {
                out.push_str(kept);
            }
        }
        out
    }
}

pub struct Pam {
    pub args: Vec<String>,
    pub stack: Stack,
    pub user: String,
    pub env: Vec<(String, String)>,
    /// PAM items for pamtester's -I (e.g. rhost=192.0.2.7).
    pub items: Vec<(String, String)>,
    /// PAM environment for pamtester's -E (e.g. SSH_AUTH_INFO_0=...).
    pub pam_env: Vec<(String, String)>,
    /// Empty tmpfs mounts inside the sandbox (to hide a host directory).
    pub tmpfs: Vec<PathBuf>,
    /// Extra bwrap binds (source, destination), after the tmpfs mounts.
    pub binds: Vec<(PathBuf, PathBuf)>,
    pub syslog: Option<PathBuf>,
    /// The PAM service name (the file written to the temporary /etc/pam.d).
    pub service: String,
    /// pamtester's operation, with flags: `authenticate(PAM_SILENT)`.
    pub operation: String,
    /// More files for the temporary /etc/pam.d (a substack's file).
    pub pam_files: Vec<(String, String)>,
}

impl Pam {
    pub fn new(bus_address: &str, user: &str) -> Pam {
        Pam {
            args: vec![format!("bus={bus_address}")],
            stack: Stack::Required,
            user: user.to_owned(),
            env: Vec::new(),
            items: Vec::new(),
            pam_env: Vec::new(),
            tmpfs: Vec::new(),
            binds: Vec::new(),
            syslog: None,
            service: "smsotp-test".into(),
            operation: "authenticate".into(),
            pam_files: Vec::new(),
        }
    }

    pub fn probe(mut self) -> Pam {
        self.stack = Stack::Probe;
        self
    }

    /// A remote login from `addr` (PAM_RHOST).
    pub fn from(mut self, addr: &str) -> Pam {
        self.items.push(("rhost".into(), addr.into()));
        self
    }

    /// sshd's SSH_AUTH_INFO_0 for a login that already passed `publickey`.
    pub fn with_key(mut self, key_line: &str) -> Pam {
        self.pam_env.push(("SSH_AUTH_INFO_0".into(), format!("publickey {key_line}")));
        self
    }

    pub fn service(mut self, name: &str) -> Pam {
        self.service = name.to_owned();
        self
    }

    /// A whole auth stack; `@PAM_SMS@` stands for pam_sms with its arguments.
    pub fn stack(mut self, text: &str) -> Pam {
        self.stack = Stack::Custom(text.to_owned());
        self
    }

    /// Another file in the temporary /etc/pam.d.
    pub fn pam_file(mut self, name: &str, text: &str) -> Pam {
        self.pam_files.push((name.to_owned(), text.to_owned()));
        self
    }

    /// pam_unix sees `shadow` (from [`shadow_with_root_password`]) as /etc/shadow.
    pub fn shadow(mut self, shadow: &std::path::Path) -> Pam {
        self.binds.push((shadow.to_owned(), "/etc/shadow".into()));
        self
    }

    /// Authenticate with PAM_SILENT, as sudo does.
    pub fn silent(mut self) -> Pam {
        self.operation = "authenticate(PAM_SILENT)".into();
        self
    }

    pub fn arg(mut self, a: &str) -> Pam {
        self.args.push(a.to_owned());
        self
    }

    fn service_file(&self) -> String {
        let module = built().pam_sms.display().to_string();
        let args = self.args.join(" ");
        match &self.stack {
            Stack::Required => format!("auth required {module} {args}\n"),
            Stack::Probe => format!(
                "auth [success=done ignore=ignore default=die] {module} {args}\nauth requisite pam_debug.so auth=cred_expired\n"
            ),
            Stack::Custom(text) => text.replace("@PAM_SMS@", &format!("{module} {args}")),
        }
    }

    /// Runs `pamtester smsotp-test USER authenticate`, typing `answers` at
    /// the code prompts (each computed only once its prompt is shown).
    pub fn run<'a>(&self, answers: Vec<Answer<'a>>) -> Run {
        let bwrap = require("bwrap", "bubblewrap");
        let pamtester = require("pamtester", "pamtester");
        let dir = crate::tools::private_tempdir();
        let pamd = dir.path().join("pam.d");
        std::fs::create_dir(&pamd).unwrap();
        std::fs::write(pamd.join(&self.service), self.service_file()).unwrap();
        for (name, text) in &self.pam_files {
            std::fs::write(pamd.join(name), text).unwrap();
        }
        let mut cmd = Command::new(bwrap);
        cmd.args(["--bind", "/", "/"]).arg("--bind").arg(&pamd).arg("/etc/pam.d").args(["--dev", "/dev"]);
        if let Some(log) = &self.syslog {
            cmd.arg("--bind").arg(log).arg("/dev/log");
        }
        for dir in &self.tmpfs {
            cmd.arg("--tmpfs").arg(dir);
        }
        for (src, dst) in &self.binds {
            cmd.arg("--bind").arg(src).arg(dst);
        }
        // Unbuffered, so messages and prompts interleave as the user sees them.
        cmd.arg(require("stdbuf", "coreutils")).args(["-o0", "-e0"]);
        cmd.arg(pamtester);
        for (k, v) in &self.items {
            cmd.arg(format!("-I{k}={v}"));
        }
        for (k, v) in &self.pam_env {
            cmd.arg(format!("-E{k}={v}"));
        }
        cmd.args([self.service.as_str(), &self.user, &self.operation]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let (reader, writer) = std::io::pipe().unwrap();
        let writer2 = writer.try_clone().unwrap();
        let mut child = cmd.stdin(Stdio::piped()).stdout(writer).stderr(writer2).spawn().unwrap();
        drop(cmd);
        let out: Arc<(Mutex<(String, bool)>, Condvar)> = Arc::default();
        let o = out.clone();
        let pump = std::thread::spawn(move || {
            let mut reader = reader;
            let mut buf = [0u8; 4096];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*o;
                let mut g = lock.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    cv.notify_all();
                    return;
                }
                g.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                cv.notify_all();
            }
        });
        let mut stdin = child.stdin.take().unwrap();
        let limit = Duration::from_secs(60);
        for (i, answer) in answers.into_iter().enumerate() {
            let (lock, cv) = &*out;
            let g = lock.lock().unwrap();
            let (g, t) = cv.wait_timeout_while(g, limit, |(text, closed)| !*closed && prompts(text) <= i).unwrap();
            if t.timed_out() {
                let _ = child.kill();
                panic!("no prompt number {} within {limit:?}; output so far:\n{}", i + 1, g.0);
            }
            if g.1 {
                break; // pamtester finished before asking again
            }
            drop(g);
            let text = answer();
            let _ = stdin.write_all(text.as_bytes()).and_then(|()| stdin.write_all(b"\n"));
        }
        drop(stdin);
        let (lock, cv) = &*out;
        let g = lock.lock().unwrap();
        let (g, t) = cv.wait_timeout_while(g, limit, |(_, closed)| !*closed).unwrap();
        if t.timed_out() {
            let _ = child.kill();
            panic!("pamtester did not finish within {limit:?}; output so far:\n{}", g.0);
        }
        let output = g.0.clone();
        drop(g);
        let _ = child.wait();
        let _ = pump.join();
        let last =
            output.rfind("pamtester: ").map(|i| output[i..].lines().next().unwrap_or("")).unwrap_or("").to_owned();
        Run { code: Code::from_line(&last), prompts: prompts(&output), output }
    }
}

/// A copy of /etc/shadow in which root's password is `password` (SHA-512
/// crypt made by `openssl passwd -6`), for pam_unix inside the sandbox.
pub fn shadow_with_root_password(dir: &std::path::Path, password: &str) -> PathBuf {
    let openssl = require("openssl", "openssl");
    let out = Command::new(openssl).args(["passwd", "-6", "-salt", "smsotptest", password]).output().unwrap();
    assert!(out.status.success(), "openssl passwd: {}", String::from_utf8_lossy(&out.stderr));
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let text: String = shadow
        .lines()
        .map(|l| match l.split_once(':') {
            Some(("root", rest)) => {
                let tail = rest.split_once(':').map(|(_, t)| t).unwrap_or("");
                format!("root:{hash}:{tail}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let path = dir.join("shadow");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

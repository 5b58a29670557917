//! A Debian 12 machine made of Linux namespaces, with our .deb installed by
//! dpkg: no Docker or Podman engine needed. The root filesystem is built
//! once by tests/container/build-rootfs.sh (debootstrap, cached); each
//! container is an overlay on it, so containers are cheap and start clean.
//! bwrap gives it its own mount, pid, uts and ipc namespaces; `ip netns`
//! gives it a network joined to the host by a veth pair, so the host's ssh
//! client logs in over TCP. Inside run dbus-daemon --system, a fake Twilio on
//! the container's loopback, smsotpd with its unit's command line, and sshd
//! configured with the README's block.

use crate::daemon::messaging_config;
use crate::syslog::SyslogCapture;
use crate::tools::{poll, require, wait_for, workspace_root};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
pub const NUMBER: &str = "+15555550100";
/// Where the fake Twilio listens, inside the container.
const TWILIO: &str = "127.0.0.1:8088";
const SMS_LOG: &str = "var/log/sms.log";

/// How the sshd in the container asks for the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshSetup {
    /// `AuthenticationMethods keyboard-interactive`, common-auth then pam_sms.
    PasswordAndSms,
    /// The README's block as it stands (publickey,keyboard-interactive),
    /// common-auth commented out.
    KeyAndSms,
}

/// How the ssh client answers the code prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Right,
    /// The right code plus one: always wrong, never a lucky guess.
    Wrong,
    /// Refuse to answer: a login that must not be asked for a code.
    None,
}

#[derive(Debug)]
pub struct Login {
    pub status: Option<i32>,
    /// For `su_on_pty`, everything the terminal showed.
    pub stdout: String,
    pub stderr: String,
    /// Every prompt the user was asked to answer, in order, as askpass.sh
    /// received it.
    pub prompts: Vec<String>,
}

impl Login {
    pub fn succeeded(&self) -> bool {
        self.status == Some(0)
    }
}

/// The .deb built by packaging/build.sh, built once per test run (release).
pub fn packages() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let out = Command::new("bash").arg("packaging/build.sh").current_dir(&root).output().expect("cannot run bash");
        assert!(out.status.success(), "packaging/build.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let version = env!("CARGO_PKG_VERSION");
        let deb = target.join(format!("debian/smsotp_{version}-1_amd64.deb"));
        let rpm = target.join(format!("generate-rpm/smsotp-{version}-1.x86_64.rpm"));
        assert!(
            deb.is_file() && rpm.is_file(),
            "packaging/build.sh did not produce {} and {}",
            deb.display(),
            rpm.display()
        );
        (deb, rpm)
    })
}

fn rootfs() -> &'static PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        require("debootstrap", "debootstrap");
        let out = Command::new("bash")
            .arg("tests/container/build-rootfs.sh")
            .current_dir(workspace_root())
            .output()
            .expect("cannot run bash");
        assert!(
            out.status.success(),
            "tests/container/build-rootfs.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// The README's sshd block, taken from README.md itself so the tests and
/// the instructions cannot drift apart.
pub fn readme_sshd_block() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let at =
        readme.find("/etc/ssh/sshd_config.d/smsotp.conf").expect("README names /etc/ssh/sshd_config.d/smsotp.conf");
    let rest = &readme[at..];
    let start = rest.find("```\n").expect("a code block after it") + 4;
    let end = rest[start..].find("```").unwrap() + start;
    rest[start..end].to_owned()
}

pub struct Container {
    pub index: u32,
    pub setup: SshSetup,
    dir: tempfile::TempDir,
    root: PathBuf,
    netns: String,
    pub address: String,
    bwrap: Child,
    pid: u32,
    pub syslog: SyslogCapture,
    key: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(1);

impl Container {
    /// A running container with the package installed, `config_extra` added
    /// to smsotpd's config top level and `tables` after it, alice enrolled.
    pub fn start(fake_twilio: &str, setup: SshSetup, config_extra: &str, tables: &str) -> Container {
        for (tool, pkg) in
            [("bwrap", "bubblewrap"), ("ip", "iproute2"), ("nsenter", "util-linux"), ("ssh", "openssh-client")]
        {
            require(tool, pkg);
        }
        let (deb, _) = packages();
        let rootfs = rootfs();
        let index = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::Builder::new().prefix("smsotp-ct.").tempdir_in("/var/tmp").unwrap();
        let root = dir.path().join("root");
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        run_ok(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o"])
                .arg(format!(
                    "lowerdir={},upperdir={},workdir={}",
                    rootfs.display(),
                    dir.path().join("upper").display(),
                    dir.path().join("work").display()
                ))
                .arg(&root),
        );

        let pid = std::process::id();
        let netns = format!("smsotp-{pid}-{index}");
        let host_if = format!("ct{}h{index}", pid % 100_000);
        let subnet = format!("10.213.{}", 100 + index);
        let address = format!("{subnet}.2");
        run_ok(Command::new("ip").args(["netns", "add", &netns]));
        run_ok(
            Command::new("ip").args(["link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &netns]),
        );
        run_ok(Command::new("ip").args(["addr", "add", &format!("{subnet}.1/24"), "dev", &host_if]));
        run_ok(Command::new("ip").args(["link", "set", &host_if, "up"]));
        run_ok(Command::new("ip").args(["-n", &netns, "addr", "add", &format!("{address}/24"), "dev", "eth0"]));
        run_ok(Command::new("ip").args(["-n", &netns, "link", "set", "eth0", "up"]));
        run_ok(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]));

        let syslog = SyslogCapture::start();
        let bwrap = Command::new("ip")
            .args(["netns", "exec", &netns, "bwrap", "--bind"])
            .arg(&root)
            .args(["/", "--proc", "/proc", "--dev", "/dev", "--bind"])
            .arg(&syslog.path)
            .args(["/dev/log", "--unshare-pid", "--unshare-uts", "--unshare-ipc"])
            .args(["--hostname", "smsotp-ct", "--die-with-parent", "--cap-add", "ALL", "--"])
            .args(["/bin/sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot start bwrap");
        // bwrap's pid 1 in the container, then its child (our sleep): once
        // that exists the container's root and mounts are in place.
        let mut inner = 0;
        wait_for("the container to start", Duration::from_secs(10), || {
            inner = children(bwrap.id()).into_iter().flat_map(children).next().unwrap_or(0);
            inner != 0
        });
        let key = dir.path().join("id_ed25519");
        let mut c = Container { index, setup, dir, root, netns, address, bwrap, pid: inner, syslog, key };
        c.provision(deb, fake_twilio, config_extra, tables);
        c
    }

    /// Host path of a file inside the container.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Runs `script` with sh inside the container, as root.
    pub fn sh(&self, script: &str) -> Output {
        self.enter().args(["/bin/sh", "-c", script]).output().expect("cannot run nsenter")
    }

    /// Like `sh`, failing the test when the script fails.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the container, `{script}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A command line that runs inside the container.
    pub fn enter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid.to_string(), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"])
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `command` in the background inside the container, output to
    /// /var/log/<name>.log.
    fn background(&self, name: &str, command: &str) {
        self.sh_ok(&format!("setsid {command} >>/var/log/{name}.log 2>&1 </dev/null &"));
    }

    fn provision(&mut self, deb: &Path, fake_twilio: &str, config_extra: &str, tables: &str) {
        // bwrap mounts the root nosuid; su and unix_chkpwd need setuid, as
        // on a real machine. (Processes we start come in through nsenter, so
        // bwrap's no_new_privs does not reach them either.)
        self.sh_ok("mount -o remount,bind,suid /");
        std::fs::copy(deb, self.path("/tmp/smsotp.deb")).unwrap();
        std::fs::copy(fake_twilio, self.path("/usr/local/bin/fake-twilio")).unwrap();
        self.sh_ok("mkdir -p /run/dbus /run/sshd && chmod 0755 /run/sshd");
        self.install("/tmp/smsotp.deb");
        self.sh_ok(&format!(
            "useradd --create-home --shell /bin/sh {USER} && echo '{USER}:{PASSWORD}' | chpasswd \
             && useradd --create-home --shell /bin/sh bob"
        ));

        // smsotpd's config: the packaged file is replaced, as an admin would,
        // with the state where the package put it.
        let config =
            messaging_config(&format!("http://{TWILIO}"), config_extra, tables).replace("@STATE@", "/var/lib/smsotpd");
        std::fs::write(self.path("/etc/smsotpd/smsotpd.toml"), config).unwrap();

        // sshd and PAM exactly as README.md says.
        let mut block = readme_sshd_block();
        let pam_sshd = match self.setup {
            SshSetup::KeyAndSms => "sed -i 's/^@include common-auth/#&/' /etc/pam.d/sshd",
            SshSetup::PasswordAndSms => {
                block = block.replace(
                    "AuthenticationMethods publickey,keyboard-interactive",
                    "AuthenticationMethods keyboard-interactive",
                );
                "true"
            }
        };
        std::fs::write(self.path("/etc/ssh/sshd_config.d/smsotp.conf"), block).unwrap();
        self.sh_ok(&format!(
            "{pam_sshd} && sed -i '/common-auth/a auth required pam_sms.so' /etc/pam.d/sshd /etc/pam.d/su"
        ));
        // A container may not set the audit login uid; Debian's Docker images
        // make it optional the same way. Nothing to do with authentication.
        self.sh_ok(
            "sed -i 's/^session\\s*required\\s*pam_loginuid.so/session optional pam_loginuid.so/' /etc/pam.d/sshd",
        );

        // alice's SSH key, made on the host side.
        run_ok(
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@host", "-f"]).arg(&self.key),
        );
        let public = std::fs::read_to_string(self.key.with_extension("pub")).unwrap();
        self.sh_ok(&format!(
            "install -d -m 0700 -o {USER} -g {USER} /home/{USER}/.ssh && echo '{}' > /home/{USER}/.ssh/authorized_keys \
             && chown {USER}: /home/{USER}/.ssh/authorized_keys",
            public.trim()
        ));

        self.background("dbus", "dbus-daemon --system --nofork --nopidfile");
        self.wait("the container's system bus", || self.path("/run/dbus/system_bus_socket").exists());
        self.background("fake-twilio", &format!("/usr/local/bin/fake-twilio {TWILIO} /{SMS_LOG}"));
        self.wait("the fake Twilio", || self.path(SMS_LOG).exists());
        self.start_daemon(None);
        self.sh_ok("/usr/sbin/sshd -t");
        self.background("sshd", "/usr/sbin/sshd -D -e");
        let addr = format!("{}:22", self.address);
        self.wait("sshd in the container", || TcpStream::connect(&addr).is_ok());
        self.sh_ok(&format!("smsotpctl enroll {USER} {NUMBER}"));
    }

    /// dpkg -i inside the container.
    pub fn install(&self, deb_inside: &str) -> String {
        self.sh_ok(&format!("DEBIAN_FRONTEND=noninteractive dpkg -i {deb_inside} 2>&1"))
    }

    /// Starts smsotpd with the command line of the unit the package
    /// installed, optionally with its clock moved by libfaketime
    /// (`FAKETIME` syntax, e.g. "+31d").
    pub fn start_daemon(&self, faketime: Option<&str>) {
        let unit = std::fs::read_to_string(self.path("/usr/lib/systemd/system/smsotpd.service")).unwrap();
        let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart= in the unit").to_owned();
        let command = match faketime {
            None => exec,
            Some(offset) => {
                format!("env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME={offset} {exec}")
            }
        };
        self.background("smsotpd", &command);
        self.wait("smsotpd on the container's bus", || self.sh("smsotpctl list >/dev/null 2>&1").status.success());
    }

    pub fn stop_daemon(&self) {
        self.sh_ok("pkill -x smsotpd");
        self.wait("smsotpd to stop", || !self.sh("pgrep -x smsotpd").status.success());
    }

    /// SMS the fake Twilio has delivered so far, as "<to>\t<body>" lines.
    pub fn sms(&self) -> Vec<String> {
        std::fs::read_to_string(self.path(SMS_LOG)).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// A log file of the container (dbus, fake-twilio, smsotpd, sshd).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("/var/log/{name}.log"))).unwrap_or_default()
    }

    /// `ssh alice@container <command>` from the host with OpenSSH's client,
    /// answering prompts through tests/container/askpass.sh.
    pub fn ssh(&self, command: &str, answer: Answer) -> Login {
        let methods = match self.setup {
            SshSetup::KeyAndSms => "publickey,keyboard-interactive",
            SshSetup::PasswordAndSms => "keyboard-interactive",
        };
        let mut ssh = Command::new("ssh");
        ssh.args(["-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes", "-o"])
            .arg(format!("PreferredAuthentications={methods}"))
            .arg("-i")
            .arg(&self.key)
            .arg(format!("{USER}@{}", self.address))
            .arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SSH_ASKPASS", askpass())
            .env("SSH_ASKPASS_REQUIRE", "force");
        self.answering(ssh, answer)
    }

    /// A console-style login: bob runs `su alice -c <command>` on a
    /// pseudo-terminal (tests/container/pty-answer.py) and types alice's
    /// password and the code, as askpass.sh answers them.
    pub fn su_on_pty(&self, command: &str, answer: Answer) -> Login {
        let mut inner = self.enter();
        inner.args(["setpriv", "--reuid=bob", "--regid=bob", "--init-groups", "su", USER, "-c", command]);
        let mut pty = Command::new("python3");
        pty.arg(workspace_root().join("tests/container/pty-answer.py"))
            .arg(askpass())
            .arg("--")
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        self.answering(pty, answer)
    }

    /// Runs `cmd`, whose prompts askpass.sh answers: the password, and the
    /// code from the next SMS the fake Twilio receives.
    fn answering(&self, mut cmd: Command, answer: Answer) -> Login {
        let prompts = tempfile::NamedTempFile::new().unwrap();
        let answer = match answer {
            Answer::Right => "right",
            Answer::Wrong => "wrong",
            Answer::None => "none",
        };
        let out = cmd
            .env("SMSOTP_PROMPT_LOG", prompts.path())
            .env("SMSOTP_PASSWORD", PASSWORD)
            .env("SMSOTP_SMS_LOG", self.path(SMS_LOG))
            .env("SMSOTP_SMS_SEEN", self.sms().len().to_string())
            .env("SMSOTP_ANSWER", answer)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Login {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            prompts: std::fs::read_to_string(prompts.path()).unwrap().lines().map(str::to_owned).collect(),
        }
    }

    /// Waits up to 15 s for `cond`; on timeout fails with the container's logs.
    fn wait(&self, what: &str, cond: impl FnMut() -> bool) {
        assert!(poll(Duration::from_secs(15), cond), "timed out waiting for {what}\n{}", self.diagnostics());
    }

    /// Everything useful when a scenario fails.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- smsotpd.log\n{}\n--- sshd.log\n{}\n--- fake-twilio.log\n{}\n--- syslog (pam_sms)\n{}",
            self.log("smsotpd"),
            self.log("sshd"),
            self.log("fake-twilio"),
            self.syslog.text()
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.bwrap.kill();
        let _ = self.bwrap.wait();
        let _ = Command::new("umount").arg("-l").arg(&self.root).status();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

fn askpass() -> PathBuf {
    workspace_root().join("tests/container/askpass.sh")
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

//! A terminal for tests: a detached tmux session on a server of its own (`tmux -L`), keys sent with
//! `send-keys`, the screen read with `capture-pane`; the server is killed on drop.
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `sh -c SCRIPT` in a new WIDTH×HEIGHT session.
    pub fn start(script: &str, width: u16, height: u16) -> Tmux {
        let t = Tmux { socket: format!("rxray-test-{}", crate::testing::unique_name()) };
        let ok = t
            .cmd()
            .args(["new-session", "-d", "-s", "t", "-x", &width.to_string(), "-y", &height.to_string(), "sh", "-c", script])
            .status()
            .expect("running tmux")
            .success();
        assert!(ok, "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Keys as tmux names them ("q", "Enter", "C-c", "Down").
    pub fn keys(&self, keys: &[&str]) {
        assert!(self.cmd().args(["send-keys", "-t", "t"]).args(keys).status().expect("tmux").success());
    }

    /// Text typed literally.
    pub fn type_text(&self, text: &str) {
        assert!(self.cmd().args(["send-keys", "-t", "t", "-l", text]).status().expect("tmux").success());
    }

    /// The visible screen, one line per row.
    pub fn screen(&self) -> String {
        let o = self.cmd().args(["capture-pane", "-p", "-t", "t"]).output().expect("tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A pane variable (`alternate_on`, `cursor_flag`, `pane_dead`).
    pub fn var(&self, name: &str) -> String {
        let o = self.cmd().args(["display-message", "-p", "-t", "t", &format!("#{{{name}}}")]).output().expect("tmux");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Polls the screen until `pred` holds (every 100 ms, at most `timeout`); the last screen.
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < end, "waited {timeout:?} for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls a pane variable until it has `value`.
    pub fn wait_var(&self, name: &str, value: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while self.var(name) != value {
            assert!(Instant::now() < end, "#{{{name}}} never became {value}; the screen:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// The script's tail that shows how the terminal was left: the program's exit code, then
/// `stty -a` (cooked mode shows `icanon` and `echo`, raw mode `-icanon` and `-echo`).
pub const AFTER: &str = "echo \"rc=$?\"; stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo; echo END; sleep 120";

/// Whether the terminal is back in cooked mode, from what `AFTER` printed.
pub fn cooked(screen: &str) -> bool {
    let words: Vec<&str> = screen.split_whitespace().collect();
    words.contains(&"icanon") && words.contains(&"echo") && !words.contains(&"-icanon") && !words.contains(&"-echo")
}

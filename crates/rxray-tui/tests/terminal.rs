//! The terminal is given back: the dashboard's own loop (`rxray_tui::run`) and terminal guard run
//! in a real terminal (tmux), once with a feed that panics (the panic injected in this test build)
//! and once quit with Ctrl-C; afterwards the screen is the main one, the cursor shows, and the tty
//! is in cooked mode (icanon, echo). The test binary runs itself as the child.
use rxray_lab::testing::{have, skip_or_fail};
use rxray_lab::tmux::{cooked, Tmux, AFTER};
use rxray_tui::collect::Collector;
use rxray_tui::run::{run, Error, Feed, Options};
use rxray_tui::term::Screen;
use std::time::{Duration, Instant};

/// A feed with nothing to say; with `panic_after`, it panics that long after the start.
struct Fake {
    started: Instant,
    panic_after: Option<Duration>,
}

impl Feed for Fake {
    fn pump(&mut self, _: &mut Collector, wait: Duration) -> Result<(), Error> {
        std::thread::sleep(wait);
        Ok(())
    }
    fn refresh(&mut self, _: &mut Collector) -> Result<(), Error> {
        if self.panic_after.is_some_and(|d| self.started.elapsed() >= d) {
            panic!("injected panic (test build)");
        }
        Ok(())
    }
}

/// The child: the dashboard on this terminal until the feed panics or a key quits it (at most 20 s).
fn child(panic_after: Option<Duration>) {
    let mut screen = Screen::enter().expect("terminal");
    let mut feed = Fake { started: Instant::now(), panic_after };
    let mut c = Collector::new("test feed");
    let o = Options { interval: Duration::from_millis(100), refreshes: Some(200) };
    run(&mut screen.terminal, &mut feed, &mut c, o).expect("run");
}

fn parent(test: &str, mode: &str) -> Option<Tmux> {
    if !have("tmux") {
        skip_or_fail("needs tmux (apt-get install tmux)");
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!("RXRAY_TUI_CHILD={mode} {} --exact {test} --nocapture --test-threads=1; {AFTER}", exe.display());
    let t = Tmux::start(&script, 80, 24);
    // The dashboard took the terminal: alternate screen on, its tab bar drawn.
    t.wait_var("alternate_on", "1", Duration::from_secs(10));
    t.wait_for(Duration::from_secs(10), "the dashboard", |s| s.contains("1:All 2:Ifaces"));
    Some(t)
}

fn restored(t: &Tmux) -> String {
    let s = t.wait_for(Duration::from_secs(20), "the child to exit", |s| s.contains("END"));
    assert_eq!(t.var("alternate_on"), "0", "still on the alternate screen:\n{s}");
    assert_eq!(t.var("cursor_flag"), "1", "cursor hidden:\n{s}");
    assert!(cooked(&s), "the tty is not back in cooked mode:\n{s}");
    s
}

#[test]
fn a_panic_restores_the_terminal() {
    if std::env::var("RXRAY_TUI_CHILD").as_deref() == Ok("panic") {
        return child(Some(Duration::from_millis(1500)));
    }
    let Some(t) = parent("a_panic_restores_the_terminal", "panic") else { return };
    let s = restored(&t);
    // The panic's message is readable on the main screen, and the child failed.
    assert!(s.contains("injected panic (test build)"), "{s}");
    assert!(s.contains("rc=101"), "{s}");
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    if std::env::var("RXRAY_TUI_CHILD").as_deref() == Ok("keys") {
        return child(None);
    }
    let Some(t) = parent("ctrl_c_quits_and_restores_the_terminal", "keys") else { return };
    t.keys(&["C-c"]);
    let s = restored(&t);
    assert!(s.contains("rc=0"), "{s}");
}

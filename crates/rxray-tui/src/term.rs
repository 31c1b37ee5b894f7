//! The terminal: raw mode and the alternate screen for the dashboard, always given back (on drop,
//! on a panic through the panic hook; Ctrl-C arrives as a key in raw mode and quits the loop), and a
//! plain full-screen text view for the commands that redraw a table (`flows`, `latency`, `http`).
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{
    cursor, execute,
    terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::layout::Position;
use ratatui::widgets::Paragraph;
use ratatui::Terminal;
use std::io::{self, Stdout};
use std::sync::Once;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Gives the terminal back: cooked mode, the main screen, the cursor. Safe to call more than once.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

static HOOK: Once = Once::new();

/// A panic restores the terminal first, then reports as it would have (the message stays readable).
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
}

/// The dashboard's terminal; dropping it restores the one it took.
pub struct Screen {
    pub terminal: Term,
}

impl Screen {
    pub fn enter() -> io::Result<Screen> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        let guard = Restore;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        std::mem::forget(guard);
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Restores on an early return from `enter`.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

/// A text redrawn in place on the main screen (what `flows` and `latency` show live): ratatui
/// redraws only the cells that changed, lines are cut at the terminal's width, and after the last
/// draw the cursor sits below the text, so the final table stays on screen.
pub struct LiveText {
    terminal: Term,
}

impl LiveText {
    pub fn new() -> io::Result<LiveText> {
        install_panic_hook();
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        Ok(LiveText { terminal })
    }

    pub fn show(&mut self, text: &str) -> io::Result<()> {
        let lines = text.lines().count() as u16;
        self.terminal.draw(|f| {
            let a = f.area();
            f.render_widget(Paragraph::new(text), a);
            f.set_cursor_position(Position { x: 0, y: lines.min(a.height.saturating_sub(1)) });
        })?;
        Ok(())
    }
}

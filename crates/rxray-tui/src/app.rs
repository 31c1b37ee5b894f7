//! The dashboard's view state (pane, sort, pause, filter being typed, selection, overlays) and what
//! each key does to it. Keys that need the data side (a new filter, a detail) come back as an `Action`.
use crate::model::{Detail, Snapshot, SortKey};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::net::IpAddr;

/// The panes, in tab order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pane {
    #[default]
    Overview,
    Interfaces,
    Flows,
    Sources,
    Ports,
    Protocols,
    Drops,
    Alerts,
    Http,
}

impl Pane {
    pub const ALL: [Pane; 9] = [
        Pane::Overview,
        Pane::Interfaces,
        Pane::Flows,
        Pane::Sources,
        Pane::Ports,
        Pane::Protocols,
        Pane::Drops,
        Pane::Alerts,
        Pane::Http,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Overview => "Overview",
            Pane::Interfaces => "Interfaces",
            Pane::Flows => "Flows",
            Pane::Sources => "Sources",
            Pane::Ports => "Ports",
            Pane::Protocols => "Protocols",
            Pane::Drops => "Drops",
            Pane::Alerts => "Alerts",
            Pane::Http => "HTTP",
        }
    }

    /// The tab's name on a narrow screen.
    pub fn short_title(self) -> &'static str {
        match self {
            Pane::Overview => "All",
            Pane::Interfaces => "Ifaces",
            Pane::Sources => "Srcs",
            Pane::Protocols => "Proto",
            p => p.title(),
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    fn step(self, by: isize) -> Pane {
        let n = Pane::ALL.len() as isize;
        Pane::ALL[((self.index() as isize + by).rem_euclid(n)) as usize]
    }
}

/// What is drawn over the panes.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Overlay {
    #[default]
    None,
    Help,
    /// The filter being typed.
    Filter(String),
    Detail(Detail),
}

/// What the data side has to do after a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    None,
    Quit,
    /// Ctrl-C (raw mode turns it into a key): quit, and a caller with more to do stops too.
    Interrupt,
    /// Apply this view filter (None: show everything); the answer goes to `filter_result`.
    Filter(Option<String>),
    /// Open the detail view of this address (`show_detail` with what was found).
    Detail(IpAddr),
    /// The order changed: re-sort the snapshot shown.
    Sort,
}

#[derive(Clone, Debug, Default)]
pub struct App {
    pub pane: Pane,
    pub sort: SortKey,
    pub paused: bool,
    /// The selected row of the pane's list (and the detail view's scroll).
    pub selected: usize,
    pub overlay: Overlay,
    /// A one-line message in the footer (a filter error, what was applied).
    pub message: Option<String>,
}

impl App {
    /// Takes one key; `snap` is what is on screen (for the selected row's address).
    pub fn on_key(&mut self, key: KeyEvent, snap: &Snapshot) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d')) {
            return Action::Interrupt;
        }
        match &mut self.overlay {
            Overlay::Filter(text) => {
                match key.code {
                    KeyCode::Enter => {
                        let t = text.trim().to_string();
                        self.overlay = Overlay::None;
                        return Action::Filter((!t.is_empty()).then_some(t));
                    }
                    KeyCode::Esc => self.overlay = Overlay::None,
                    KeyCode::Backspace => {
                        text.pop();
                    }
                    KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
                    KeyCode::Char(c) if text.chars().count() < 500 => text.push(c),
                    _ => {}
                }
                return Action::None;
            }
            Overlay::Help => {
                if key.code == KeyCode::Char('q') {
                    return Action::Quit;
                }
                self.overlay = Overlay::None;
                return Action::None;
            }
            Overlay::Detail(_) => {
                match key.code {
                    KeyCode::Char('q') => return Action::Quit,
                    KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => {
                        self.overlay = Overlay::None;
                        self.selected = 0;
                    }
                    KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
                    KeyCode::Down | KeyCode::Char('j') => self.selected += 1,
                    KeyCode::PageDown => self.selected += 10,
                    KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
                    _ => {}
                }
                return Action::None;
            }
            Overlay::None => {}
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::F(1) => self.overlay = Overlay::Help,
            KeyCode::Tab | KeyCode::Right => self.switch(self.pane.step(1)),
            KeyCode::BackTab | KeyCode::Left => self.switch(self.pane.step(-1)),
            KeyCode::Char(c @ '1'..='9') => self.switch(Pane::ALL[c as usize - '1' as usize]),
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.message = Some(format!("sorted by {}", self.sort.name()));
                return Action::Sort;
            }
            KeyCode::Char('/') | KeyCode::Char('f') => {
                self.overlay = Overlay::Filter(snap.filter.clone().unwrap_or_default());
            }
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.paused = !self.paused;
                self.message = Some(if self.paused { "paused: p resumes" } else { "resumed" }.into());
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(self.rows(snap).saturating_sub(1)),
            KeyCode::Home => self.selected = 0,
            KeyCode::Enter | KeyCode::Char('d') => {
                if let Some(a) = self.selected_addr(snap) {
                    return Action::Detail(a);
                }
                self.message = Some("no address here: select a row in Sources, Flows or Alerts (Enter opens it)".into());
            }
            _ => {}
        }
        Action::None
    }

    fn switch(&mut self, p: Pane) {
        self.pane = p;
        self.selected = 0;
    }

    /// Rows in the current pane's list.
    fn rows(&self, s: &Snapshot) -> usize {
        match self.pane {
            Pane::Overview | Pane::Sources => s.sources.len(),
            Pane::Flows => s.flows.len(),
            Pane::Ports => s.ports.len(),
            Pane::Protocols => s.protocols.len(),
            Pane::Drops => s.drops.reasons.len(),
            Pane::Alerts => s.alerts.recent.len(),
            Pane::Http => s.http.endpoints.len(),
            Pane::Interfaces => s.ifaces.len(),
        }
    }

    /// The address of the selected row: a source, a flow's source, an alert's source.
    pub fn selected_addr(&self, s: &Snapshot) -> Option<IpAddr> {
        match self.pane {
            Pane::Overview | Pane::Sources => s.sources.get(self.selected)?.addr,
            Pane::Flows => s.flows.get(self.selected)?.src,
            Pane::Alerts => {
                let a = s.alerts.recent.get(self.selected)?;
                a.src.or(a.dst)
            }
            _ => None,
        }
    }

    /// What the data side made of the filter: the error text, or None when it was applied.
    pub fn filter_result(&mut self, filter: Option<&str>, error: Option<String>) {
        self.selected = 0;
        self.message = Some(match (error, filter) {
            (Some(e), _) => e.replace('\n', " "),
            (None, Some(f)) => format!("filter: {f}"),
            (None, None) => "filter cleared".into(),
        });
    }

    pub fn show_detail(&mut self, d: Detail) {
        self.selected = 0;
        self.overlay = Overlay::Detail(d);
    }
}

const BASE64: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
const CLIPBOARD_SELECTOR: &[u8] = b"cpqs01234567";

/// brokertui patch: most bytes of a DCS string kept for `Callbacks::dcs` (longer ones are
/// dropped whole).
const MAX_DCS: usize = 4096;

/// brokertui patch: a DCS string being received.
struct Dcs {
    intermediates: Vec<u8>,
    action: char,
    data: Vec<u8>,
}

pub struct WrappedScreen<CB: crate::callbacks::Callbacks = ()> {
    pub screen: crate::screen::Screen,
    pub callbacks: CB,
    dcs: Option<Dcs>,
    /// brokertui patch: the character just printed, for REP (`CSI b`); anything else
    /// in between forgets it, as in tmux.
    last: Option<char>,
}

impl WrappedScreen<()> {
    pub fn new(rows: u16, cols: u16, scrollback_len: usize) -> Self {
        Self::new_with_callbacks(rows, cols, scrollback_len, ())
    }
}

impl<CB: crate::callbacks::Callbacks> WrappedScreen<CB> {
    pub fn new_with_callbacks(
        rows: u16,
        cols: u16,
        scrollback_len: usize,
        callbacks: CB,
    ) -> Self {
        Self {
            screen: crate::screen::Screen::new(
                crate::grid::Size { rows, cols },
                scrollback_len,
            ),
            callbacks,
            dcs: None,
            last: None,
        }
    }
}

impl<CB: crate::callbacks::Callbacks> vte::Perform for WrappedScreen<CB> {
    // brokertui patch: DCS strings reach `Callbacks::dcs` (upstream dropped them), for
    // queries such as XTGETTCAP (`DCS + q … ST`).
    fn hook(
        &mut self,
        _params: &vte::Params,
        intermediates: &[u8],
        _ignore: bool,
        action: char,
    ) {
        self.last = None;
        self.dcs = Some(Dcs {
            intermediates: intermediates.to_vec(),
            action,
            data: Vec::new(),
        });
    }

    fn put(&mut self, byte: u8) {
        if let Some(dcs) = &mut self.dcs {
            if dcs.data.len() < MAX_DCS {
                dcs.data.push(byte);
            } else {
                self.dcs = None;
            }
        }
    }

    fn unhook(&mut self) {
        if let Some(dcs) = self.dcs.take() {
            self.callbacks.dcs(
                &mut self.screen,
                &dcs.intermediates,
                dcs.action,
                &dcs.data,
            );
        }
    }

    fn print(&mut self, c: char) {
        if c == '\u{fffd}' || ('\u{80}'..'\u{a0}').contains(&c) {
            self.callbacks.unhandled_char(&mut self.screen, c);
        } else {
            let c = if self.screen.charsets().active() {
                crate::charset::dec_graphics(c)
            } else {
                c
            };
            self.screen.text(c);
            self.last = Some(c);
        }
    }

    // brokertui patch: a run of printable ASCII is written a row at a time; what does not
    // fit the row (a wrap), or meets a wide character, takes the per-character path.
    fn print_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let graphics = self.screen.charsets().active();
        let mut i = 0;
        while i < bytes.len() {
            let written = if graphics {
                0
            } else {
                self.screen.text_ascii_run(&bytes[i..])
            };
            if written > 0 {
                i += written;
                self.last = Some(char::from(bytes[i - 1]));
            } else {
                self.print(char::from(bytes[i]));
                i += 1;
            }
        }
    }

    fn execute(&mut self, b: u8) {
        self.last = None;
        match b {
            7 => self.callbacks.audible_bell(&mut self.screen),
            8 => self.screen.bs(),
            9 => self.screen.tab(),
            10 => self.screen.lf(),
            11 => self.screen.vt(),
            12 => self.screen.ff(),
            13 => self.screen.cr(),
            // brokertui patch: shift out / shift in pick G1 / G0.
            14 => self.screen.charsets_mut().shifted = true,
            15 => self.screen.charsets_mut().shifted = false,
            _ => self.callbacks.unhandled_control(&mut self.screen, b),
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, b: u8) {
        self.last = None;
        // brokertui patch: DECALN (`ESC # 8`), the screen alignment test.
        if intermediates == b"#" && b == b'8' {
            self.screen.decaln();
            return;
        }
        // brokertui patch: G0 / G1 designation, DEC special graphics or not.
        if let [set @ (b'(' | b')')] = intermediates {
            self.screen.charsets_mut().graphics[usize::from(*set == b')')] = b == b'0';
            return;
        }
        if let Some(i) = intermediates.first() {
            self.callbacks.unhandled_escape(
                &mut self.screen,
                Some(*i),
                intermediates.get(1).copied(),
                b,
            );
        } else {
            match b {
                b'7' => self.screen.decsc(),
                b'8' => self.screen.decrc(),
                // brokertui patch: IND, NEL and HTS.
                b'D' => self.screen.lf(),
                b'E' => {
                    self.screen.cr();
                    self.screen.lf();
                }
                b'H' => self.screen.hts(),
                b'=' => self.screen.deckpam(),
                b'>' => self.screen.deckpnm(),
                b'M' => self.screen.ri(),
                b'c' => self.screen.ris(),
                b'g' => self.callbacks.visual_bell(&mut self.screen),
                _ => {
                    self.callbacks.unhandled_escape(
                        &mut self.screen,
                        None,
                        None,
                        b,
                    );
                }
            }
        }
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        _ignore: bool,
        c: char,
    ) {
        // brokertui patch: REP repeats the last character printed, never past the right
        // margin (tmux's rule).
        if c == 'b' && intermediates.is_empty() {
            if let Some(last) = self.last {
                let (_, cols) = self.screen.size();
                let room = cols.saturating_sub(self.screen.grid().pos().col);
                for _ in 0..canonicalize_params_1(params, 1).min(room) {
                    self.screen.text(last);
                }
            }
            return;
        }
        self.last = None;
        let unhandled = |screen: &mut crate::screen::Screen| {
            self.callbacks.unhandled_csi(
                screen,
                intermediates.first().copied(),
                intermediates.get(1).copied(),
                &params.iter().collect::<Vec<_>>(),
                c,
            );
        };
        match intermediates.first() {
            None => match c {
                '@' => self.screen.ich(canonicalize_params_1(params, 1)),
                'A' => self.screen.cuu(canonicalize_params_1(params, 1)),
                'B' => self.screen.cud(canonicalize_params_1(params, 1)),
                'C' => self.screen.cuf(canonicalize_params_1(params, 1)),
                'D' => self.screen.cub(canonicalize_params_1(params, 1)),
                'E' => self.screen.cnl(canonicalize_params_1(params, 1)),
                'F' => self.screen.cpl(canonicalize_params_1(params, 1)),
                'G' => self.screen.cha(canonicalize_params_1(params, 1)),
                'H' => self.screen.cup(canonicalize_params_2(params, 1, 1)),
                // brokertui patch: HVP, HPA, HPR, VPR, CHT, CBT, TBC, SCOSC and SCORC.
                'f' => self.screen.cup(canonicalize_params_2(params, 1, 1)),
                '`' => self.screen.cha(canonicalize_params_1(params, 1)),
                'a' => self.screen.cuf(canonicalize_params_1(params, 1)),
                'e' => self.screen.cud(canonicalize_params_1(params, 1)),
                'I' => self.screen.cht(canonicalize_params_1(params, 1)),
                'Z' => self.screen.cbt(canonicalize_params_1(params, 1)),
                'g' => self.screen.tbc(canonicalize_params_1(params, 0)),
                's' if no_params(params) => self.screen.decsc(),
                'u' if no_params(params) => self.screen.decrc(),
                'J' => self
                    .screen
                    .ed(canonicalize_params_1(params, 0), unhandled),
                'K' => self
                    .screen
                    .el(canonicalize_params_1(params, 0), unhandled),
                'L' => self.screen.il(canonicalize_params_1(params, 1)),
                'M' => self.screen.dl(canonicalize_params_1(params, 1)),
                'P' => self.screen.dch(canonicalize_params_1(params, 1)),
                'S' => self.screen.su(canonicalize_params_1(params, 1)),
                'T' => self.screen.sd(canonicalize_params_1(params, 1)),
                'X' => self.screen.ech(canonicalize_params_1(params, 1)),
                'h' => self.screen.sm(params, unhandled),
                'l' => self.screen.rm(params, unhandled),
                'd' => self.screen.vpa(canonicalize_params_1(params, 1)),
                'm' => self.screen.sgr(params, unhandled),
                'r' => self.screen.decstbm(canonicalize_params_decstbm(
                    params,
                    self.screen.grid().size(),
                )),
                't' => {
                    let mut params_iter = params.iter();
                    let op =
                        params_iter.next().and_then(|x| x.first().copied());
                    if op == Some(8) {
                        let (screen_rows, screen_cols) = self.screen.size();
                        let rows =
                            params_iter.next().map_or(screen_rows, |x| {
                                *x.first().unwrap_or(&screen_rows)
                            });
                        let cols =
                            params_iter.next().map_or(screen_cols, |x| {
                                *x.first().unwrap_or(&screen_cols)
                            });
                        self.callbacks.resize(&mut self.screen, (rows, cols));
                    } else {
                        self.callbacks.unhandled_csi(
                            &mut self.screen,
                            None,
                            None,
                            &params.iter().collect::<Vec<_>>(),
                            c,
                        );
                    }
                }
                _ => {
                    self.callbacks.unhandled_csi(
                        &mut self.screen,
                        None,
                        None,
                        &params.iter().collect::<Vec<_>>(),
                        c,
                    );
                }
            },
            Some(b'?') => match c {
                'J' => self
                    .screen
                    .decsed(canonicalize_params_1(params, 0), unhandled),
                'K' => self
                    .screen
                    .decsel(canonicalize_params_1(params, 0), unhandled),
                'h' => self.screen.decset(params, unhandled),
                'l' => self.screen.decrst(params, unhandled),
                _ => {
                    self.callbacks.unhandled_csi(
                        &mut self.screen,
                        Some(b'?'),
                        intermediates.get(1).copied(),
                        &params.iter().collect::<Vec<_>>(),
                        c,
                    );
                }
            },
            Some(i) => {
                self.callbacks.unhandled_csi(
                    &mut self.screen,
                    Some(*i),
                    intermediates.get(1).copied(),
                    &params.iter().collect::<Vec<_>>(),
                    c,
                );
            }
        }
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _bel_terminated: bool) {
        self.last = None;
        match params {
            [b"0", s] => {
                self.callbacks.set_window_icon_name(&mut self.screen, s);
                self.callbacks.set_window_title(&mut self.screen, s);
            }
            [b"1", s] => {
                self.callbacks.set_window_icon_name(&mut self.screen, s);
            }
            [b"2", s] => {
                self.callbacks.set_window_title(&mut self.screen, s);
            }
            [b"52", ty, data] => {
                match (
                    ty.iter().all(|c| CLIPBOARD_SELECTOR.contains(c)),
                    *data,
                ) {
                    (true, b"?") => {
                        self.callbacks
                            .paste_from_clipboard(&mut self.screen, ty);
                    }
                    (true, data)
                        if data.iter().all(|c| BASE64.contains(c)) =>
                    {
                        self.callbacks.copy_to_clipboard(
                            &mut self.screen,
                            ty,
                            data,
                        );
                    }
                    _ => {
                        self.callbacks
                            .unhandled_osc(&mut self.screen, params);
                    }
                }
            }
            _ => {
                self.callbacks.unhandled_osc(&mut self.screen, params);
            }
        }
    }
}

fn canonicalize_params_1(params: &vte::Params, default: u16) -> u16 {
    let first = params.iter().next().map_or(0, |x| *x.first().unwrap_or(&0));
    if first == 0 {
        default
    } else {
        first
    }
}

fn canonicalize_params_2(
    params: &vte::Params,
    default1: u16,
    default2: u16,
) -> (u16, u16) {
    let mut iter = params.iter();
    let first = iter.next().map_or(0, |x| *x.first().unwrap_or(&0));
    let first = if first == 0 { default1 } else { first };

    let second = iter.next().map_or(0, |x| *x.first().unwrap_or(&0));
    let second = if second == 0 { default2 } else { second };

    (first, second)
}

fn canonicalize_params_decstbm(
    params: &vte::Params,
    size: crate::grid::Size,
) -> (u16, u16) {
    let mut iter = params.iter();
    let top = iter.next().map_or(0, |x| *x.first().unwrap_or(&0));
    let top = if top == 0 { 1 } else { top };

    let bottom = iter.next().map_or(0, |x| *x.first().unwrap_or(&0));
    let bottom = if bottom == 0 { size.rows } else { bottom };

    (top, bottom)
}

/// brokertui patch: `CSI s` with nothing (vte reports that as one zero parameter).
fn no_params(params: &vte::Params) -> bool {
    params.iter().all(|p| p == [0])
}

//! Layouts: tiled (1 pane full, 2 side by side, then a grid whose last row stretches to
//! fill), main + stack (the first pane large, the others beside or below it), and even
//! columns or rows. Each pane has a weight (its share along the way its slice is cut), and
//! the main layouts a main share: the keyboard and border drags change those.

use ratatui::layout::Rect;

/// A pane's weight when nobody resized it.
pub const WEIGHT: u32 = 100;
/// The main pane's share of a main layout, in percent, when nobody resized it.
pub const MAIN_SHARE: u16 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arrangement {
    #[default]
    Tiled,
    /// The first pane on the left, the others stacked on the right.
    MainVertical,
    /// The first pane on top, the others side by side below.
    MainHorizontal,
    /// Side by side.
    EvenHorizontal,
    /// Stacked.
    EvenVertical,
}

impl Arrangement {
    pub fn next(self) -> Self {
        use Arrangement::*;
        match self {
            Tiled => MainVertical,
            MainVertical => MainHorizontal,
            MainHorizontal => EvenHorizontal,
            EvenHorizontal => EvenVertical,
            EvenVertical => Tiled,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Arrangement::Tiled => "tiled",
            Arrangement::MainVertical => "main + stack",
            Arrangement::MainHorizontal => "main on top",
            Arrangement::EvenHorizontal => "even columns",
            Arrangement::EvenVertical => "even rows",
        }
    }

    /// Whether the first pane is the main one (its size is the main share).
    pub fn has_main(self) -> bool {
        matches!(
            self,
            Arrangement::MainVertical | Arrangement::MainHorizontal
        )
    }
}

/// Areas (borders included) of panes with these `weights` in `area`.
pub fn arrange(kind: Arrangement, area: Rect, weights: &[u32], main_share: u16) -> Vec<Rect> {
    let n = weights.len();
    match (kind, n) {
        (_, 0) => Vec::new(),
        (_, 1) => vec![area],
        (Arrangement::Tiled, 2) | (Arrangement::EvenHorizontal, _) => split(area, weights, false),
        (Arrangement::EvenVertical, _) => split(area, weights, true),
        (Arrangement::MainVertical | Arrangement::MainHorizontal, _) => {
            let vertical = kind == Arrangement::MainHorizontal;
            let share = u32::from(main_share.clamp(10, 90));
            let main = [share, 100 - share];
            let [first, rest] = split(area, &main, vertical)[..] else {
                unreachable!("two slices")
            };
            let mut out = vec![first];
            out.extend(split(rest, &weights[1..], !vertical));
            out
        }
        (Arrangement::Tiled, _) => {
            let cols = (n as f64).sqrt().ceil() as usize;
            let rows = n.div_ceil(cols);
            let row_areas = split(area, &vec![WEIGHT; rows], true);
            let mut out = Vec::with_capacity(n);
            for (r, row) in row_areas.into_iter().enumerate() {
                let first = r * cols;
                let in_row = (n - first).min(cols);
                out.extend(split(row, &weights[first..first + in_row], false));
            }
            out
        }
    }
}

/// Areas of `n` panes tiled with equal weights.
pub fn tile(area: Rect, n: usize) -> Vec<Rect> {
    arrange(Arrangement::Tiled, area, &vec![WEIGHT; n], MAIN_SHARE)
}

/// Slices of `area` in proportion to `weights`, stacked vertically or side by side; what
/// rounding leaves goes to the first slices so they line up with no gap.
fn split(area: Rect, weights: &[u32], vertical: bool) -> Vec<Rect> {
    let total = if vertical { area.height } else { area.width } as u64;
    let sum: u64 = weights.iter().map(|&w| u64::from(w.max(1))).sum();
    let mut lens: Vec<u64> = weights
        .iter()
        .map(|&w| total * u64::from(w.max(1)) / sum)
        .collect();
    let mut left = total - lens.iter().sum::<u64>();
    for len in lens.iter_mut() {
        if left == 0 {
            break;
        }
        *len += 1;
        left -= 1;
    }
    let mut pos = 0;
    lens.into_iter()
        .map(|len| {
            let len = len as u16;
            let r = if vertical {
                Rect::new(area.x, area.y + pos, area.width, len)
            } else {
                Rect::new(area.x + pos, area.y, len, area.height)
            };
            pos += len;
            r
        })
        .collect()
}

/// The inside of a bordered pane.
pub fn inner(area: Rect) -> Rect {
    Rect::new(
        area.x.saturating_add(1),
        area.y.saturating_add(1),
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    )
}

/// The neighbour of pane `from` in direction (dx, dy), as tmux picks it: the nearest pane wholly
/// on that side that shares some of `from`'s extent across the move, the one sharing most on a
/// tie.
pub fn neighbour(areas: &[Rect], from: usize, dx: i32, dy: i32) -> Option<usize> {
    let f = areas.get(from)?;
    // Along the move: the gap from `from`'s edge to the candidate's near edge (it must lie
    // wholly on that side). Across it: how much the two overlap (there must be some).
    let span = |r: &Rect| -> ((i32, i32), (i32, i32)) {
        let x = (r.x as i32, r.x as i32 + r.width as i32);
        let y = (r.y as i32, r.y as i32 + r.height as i32);
        if dx != 0 { (x, y) } else { (y, x) }
    };
    let dir = if dx != 0 { dx } else { dy };
    let (f_along, f_across) = span(f);
    areas
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != from)
        .filter_map(|(i, r)| {
            let (along, across) = span(r);
            let gap = if dir > 0 {
                along.0 - f_along.1
            } else {
                f_along.0 - along.1
            };
            let overlap = across.1.min(f_across.1) - across.0.max(f_across.0);
            (gap >= 0 && overlap > 0).then_some((i, gap, overlap))
        })
        .min_by_key(|&(_, gap, overlap)| (gap, -overlap))
        .map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_arrangement_covers_the_area_and_weights_share_it() {
        use super::*;
        let area = Rect::new(0, 0, 100, 40);
        let mut kind = Arrangement::Tiled;
        for _ in 0..5 {
            for n in 1..=7 {
                let rects = arrange(kind, area, &vec![WEIGHT; n], MAIN_SHARE);
                let covered: u32 = rects.iter().map(|r| r.area()).sum();
                assert_eq!(covered, 4000, "{kind:?} {n}");
            }
            kind = kind.next();
        }
        assert_eq!(kind, Arrangement::Tiled, "the cycle comes back");
        let main = arrange(Arrangement::MainVertical, area, &[WEIGHT; 3], 70);
        assert_eq!((main[0].width, main[1].width, main[1].height), (70, 30, 20));
        let even = arrange(Arrangement::EvenHorizontal, area, &[300, 100], MAIN_SHARE);
        assert_eq!((even[0].width, even[1].width), (75, 25));
    }

    use super::*;

    #[test]
    fn tiles_cover_the_area_without_overlap() {
        let area = Rect::new(0, 0, 101, 41);
        for n in 1..=16 {
            let tiles = tile(area, n);
            assert_eq!(tiles.len(), n);
            let covered: u32 = tiles.iter().map(|r| r.area()).sum();
            assert_eq!(covered, area.area(), "n={n}");
            for (i, a) in tiles.iter().enumerate() {
                for b in &tiles[i + 1..] {
                    assert!(!a.intersects(*b), "n={n}: {a:?} overlaps {b:?}");
                }
            }
        }
    }

    #[test]
    fn two_are_side_by_side_and_seven_make_a_three_column_grid() {
        let area = Rect::new(0, 0, 90, 30);
        let two = tile(area, 2);
        assert_eq!((two[0].width, two[1].x), (45, 45));
        let seven = tile(area, 7);
        assert_eq!(seven[0].width, 30);
        assert_eq!(seven[6].width, 90, "the last row's single pane stretches");
    }

    #[test]
    fn neighbours_follow_geometry() {
        let tiles = tile(Rect::new(0, 0, 80, 40), 4);
        assert_eq!(neighbour(&tiles, 0, 1, 0), Some(1));
        assert_eq!(neighbour(&tiles, 0, 0, 1), Some(2));
        assert_eq!(neighbour(&tiles, 3, -1, 0), Some(2));
        assert_eq!(neighbour(&tiles, 0, -1, 0), None);
    }

    #[test]
    fn a_move_picks_the_pane_on_that_side_that_overlaps_most() {
        // Two panes on top, one wide below: Right from the top-left is the top-right one,
        // not the wide pane whose centre happens to be nearer.
        let top_left = Rect::new(0, 0, 40, 10);
        let top_right = Rect::new(40, 0, 40, 10);
        let bottom = Rect::new(0, 10, 80, 30);
        let areas = [top_left, top_right, bottom];
        assert_eq!(neighbour(&areas, 0, 1, 0), Some(1));
        assert_eq!(neighbour(&areas, 1, -1, 0), Some(0));
        assert_eq!(neighbour(&areas, 0, 0, 1), Some(2));
        assert_eq!(neighbour(&areas, 1, 0, 1), Some(2));
        assert_eq!(
            neighbour(&areas, 2, 0, -1),
            Some(0),
            "the one it overlaps most (a tie: the first)"
        );
        assert_eq!(neighbour(&areas, 2, 1, 0), None);
        // Up from a pane under two unequal ones: the one it overlaps most.
        let areas = [
            Rect::new(0, 0, 20, 10),
            Rect::new(20, 0, 60, 10),
            Rect::new(10, 10, 70, 10),
        ];
        assert_eq!(neighbour(&areas, 2, 0, -1), Some(1));
    }
}

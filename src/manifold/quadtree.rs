//! A 2-D quadtree over an embedding for Barnes-Hut t-SNE: each cell keeps its point count and
//! centre of mass, and a far cell (width / distance < angle) stands in for all its points.

/// Cells in one arena; children index into it (0: none, as the root is never a child).
struct Cell {
    cx: f64,
    cy: f64,
    half: f64,
    count: usize,
    mass_x: f64,
    mass_y: f64,
    children: [u32; 4],
    /// A leaf's point (usize::MAX for an empty or inner cell).
    point: usize,
}

pub struct QuadTree {
    cells: Vec<Cell>,
}

/// Below this width, points are treated as one location (duplicates would split forever).
const MIN_HALF: f64 = 1e-12;
/// Deeper than this, points share a leaf (2^-64 of the root's width is below MIN_HALF anyway).
const MAX_DEPTH: usize = 64;

impl QuadTree {
    /// The tree over points y = [x0, y0, x1, y1, ...].
    pub fn build(y: &[f64]) -> QuadTree {
        let n = y.len() / 2;
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for i in 0..n {
            for d in 0..2 {
                lo[d] = lo[d].min(y[2 * i + d]);
                hi[d] = hi[d].max(y[2 * i + d]);
            }
        }
        let half = ((hi[0] - lo[0]).max(hi[1] - lo[1]) / 2.0).max(MIN_HALF) * (1.0 + 1e-3);
        let root = Cell {
            cx: (lo[0] + hi[0]) / 2.0,
            cy: (lo[1] + hi[1]) / 2.0,
            half,
            count: 0,
            mass_x: 0.0,
            mass_y: 0.0,
            children: [0; 4],
            point: usize::MAX,
        };
        let mut tree = QuadTree { cells: Vec::with_capacity(2 * n + 1) };
        tree.cells.push(root);
        for i in 0..n {
            tree.insert(i, y[2 * i], y[2 * i + 1]);
        }
        tree
    }

    fn quadrant(c: &Cell, x: f64, y: f64) -> usize {
        (x >= c.cx) as usize + 2 * (y >= c.cy) as usize
    }

    fn child(&mut self, at: usize, q: usize) -> usize {
        if self.cells[at].children[q] == 0 {
            let c = &self.cells[at];
            let h = c.half / 2.0;
            let cx = c.cx + if q & 1 == 1 { h } else { -h };
            let cy = c.cy + if q & 2 == 2 { h } else { -h };
            self.cells.push(Cell { cx, cy, half: h, count: 0, mass_x: 0.0, mass_y: 0.0, children: [0; 4], point: usize::MAX });
            let id = self.cells.len() - 1;
            self.cells[at].children[q] = id as u32;
        }
        self.cells[at].children[q] as usize
    }

    fn insert(&mut self, i: usize, x: f64, y: f64) {
        let mut at = 0;
        // Depth is bounded too: non-finite coordinates would otherwise split cells forever.
        let mut depth = 0;
        loop {
            depth += 1;
            let c = &mut self.cells[at];
            let was = c.count;
            c.mass_x = (c.mass_x * was as f64 + x) / (was + 1) as f64;
            c.mass_y = (c.mass_y * was as f64 + y) / (was + 1) as f64;
            c.count += 1;
            let leaf = c.children == [0; 4];
            if leaf && was == 0 {
                c.point = i;
                return;
            }
            if leaf {
                // An occupied leaf: too small to split (duplicates) keeps the extra point here.
                if c.half <= MIN_HALF || depth > MAX_DEPTH {
                    return;
                }
                // Push its resident point down one level, then continue with the new one.
                let resident = c.point;
                c.point = usize::MAX;
                let (rx, ry) =
                    if was == 1 { (c.mass_x * (was + 1) as f64 - x, c.mass_y * (was + 1) as f64 - y) } else { (c.mass_x, c.mass_y) };
                let q = Self::quadrant(&self.cells[at], rx, ry);
                let ch = self.child(at, q);
                let cc = &mut self.cells[ch];
                cc.count = was;
                cc.mass_x = rx;
                cc.mass_y = ry;
                cc.point = resident;
            }
            let q = Self::quadrant(&self.cells[at], x, y);
            at = self.child(at, q);
        }
    }

    /// The repulsion on point i at (x, y): (Σ q²·dx, Σ q²·dy, Σ q) with q = 1/(1 + d²) over
    /// every other point, far cells summarised by their centre of mass.
    pub fn repulsion(&self, i: usize, x: f64, y: f64, angle: f64) -> (f64, f64, f64) {
        self.repulsion_with(&mut Vec::new(), i, x, y, angle)
    }

    /// The same with a caller's stack, reused across points (one allocation per thread).
    pub fn repulsion_with(&self, stack: &mut Vec<usize>, i: usize, x: f64, y: f64, angle: f64) -> (f64, f64, f64) {
        let (mut fx, mut fy, mut z) = (0.0, 0.0, 0.0);
        stack.clear();
        stack.push(0);
        while let Some(at) = stack.pop() {
            let c = &self.cells[at];
            if c.count == 0 {
                continue;
            }
            let leaf = c.children == [0; 4];
            let (dx, dy) = (x - c.mass_x, y - c.mass_y);
            let d2 = dx * dx + dy * dy;
            if leaf || (2.0 * c.half) < angle * d2.sqrt() {
                // A leaf holding i itself counts the other points stacked there (at distance 0).
                let n = if leaf && (c.point == i || d2 == 0.0) { c.count - 1 } else { c.count };
                if n == 0 {
                    continue;
                }
                let q = 1.0 / (1.0 + d2);
                z += n as f64 * q;
                let w = n as f64 * q * q;
                fx += w * dx;
                fy += w * dy;
            } else {
                stack.extend(c.children.iter().filter(|&&ch| ch != 0).map(|&ch| ch as usize));
            }
        }
        (fx, fy, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(y: &[f64], i: usize) -> (f64, f64, f64) {
        let (mut fx, mut fy, mut z) = (0.0, 0.0, 0.0);
        for j in 0..y.len() / 2 {
            if j != i {
                let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                let q = 1.0 / (1.0 + dx * dx + dy * dy);
                z += q;
                fx += q * q * dx;
                fy += q * q * dy;
            }
        }
        (fx, fy, z)
    }

    #[test]
    fn non_finite_points_do_not_split_forever() {
        let y = vec![0.0, 1.0, f64::NAN, 2.0, f64::INFINITY, 0.0, 3.0, 3.0];
        let tree = QuadTree::build(&y);
        assert!(tree.cells.len() < 1000);
    }

    #[test]
    fn angle_zero_is_exact_and_duplicates_are_counted() {
        let mut rng = crate::rng::Rng::new(5);
        let mut y: Vec<f64> = (0..400).map(|_| rng.normal() * 3.0).collect();
        y.extend([1.0, 1.0, 1.0, 1.0]); // two identical points
        let tree = QuadTree::build(&y);
        for i in [0, 7, 150, 200, 201] {
            let (a, b) = (tree.repulsion(i, y[2 * i], y[2 * i + 1], 0.0), brute(&y, i));
            assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9 && (a.2 - b.2).abs() < 1e-9, "{a:?} {b:?}");
            let approx = tree.repulsion(i, y[2 * i], y[2 * i + 1], 0.5);
            assert!((approx.2 - b.2).abs() / b.2 < 0.05, "{approx:?} {b:?}");
        }
    }
}

//! The bundled font. plotters' ab_glyph backend draws text only with registered fonts; we
//! register DejaVu Sans (Bitstream Vera license, DejaVuSans-LICENSE.txt) as "sans-serif" once,
//! so figures need no system font libraries and text never fails for want of a font.

use plotters::style::FontStyle;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// The family name every figure uses.
pub const FAMILY: &str = "sans-serif";

pub fn ensure_registered() {
    REGISTER.call_once(|| {
        // The bytes are a known-good TTF compiled into the binary; a failure here would be a
        // build defect, and text would then be skipped rather than crash.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

//! The file formats of the figures: SVG (always written: `report.html` inlines it), and PNG and
//! PDF converted from the same SVG text (resvg rasterises it, svg2pdf writes it as vector PDF),
//! with the text set in a sans-serif font of the system's.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use crate::ExperimentError;

/// A file format of the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FigureFormat {
    /// Scalable vector graphics (`.svg`), the format every figure is drawn in.
    Svg,
    /// A bitmap (`.png`) at the SVG's size in pixels.
    Png,
    /// A vector PDF page (`.pdf`) of the SVG's size.
    Pdf,
}

impl FigureFormat {
    /// Every format, in the order of their names.
    pub const ALL: [FigureFormat; 3] = [FigureFormat::Svg, FigureFormat::Png, FigureFormat::Pdf];

    /// The format's name and file extension.
    pub fn name(self) -> &'static str {
        match self {
            FigureFormat::Svg => "svg",
            FigureFormat::Png => "png",
            FigureFormat::Pdf => "pdf",
        }
    }

    /// The file of this format of the SVG figure `svg_path` (its extension replaced).
    pub fn path_of(self, svg_path: &std::path::Path) -> std::path::PathBuf {
        svg_path.with_extension(self.name())
    }

    /// Converts the SVG document `svg` to this format: the SVG text itself, a PNG image or a
    /// PDF document; the reason where it cannot be converted.
    pub fn convert(self, svg: &str) -> Result<Vec<u8>, String> {
        match self {
            FigureFormat::Svg => Ok(svg.as_bytes().to_vec()),
            FigureFormat::Png => {
                let tree = tree(svg)?;
                let size = tree.size().to_int_size();
                let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
                    .ok_or_else(|| format!("cannot allocate a {}x{} image", size.width(), size.height()))?;
                pixmap.fill(tiny_skia::Color::WHITE);
                resvg::render(&tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
                pixmap.encode_png().map_err(|e| format!("PNG encoding failed: {e}"))
            }
            FigureFormat::Pdf => {
                let tree = tree(svg)?;
                svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), svg2pdf::PageOptions::default())
                    .map_err(|e| format!("PDF conversion failed: {e}"))
            }
        }
    }
}

impl std::fmt::Display for FigureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FigureFormat {
    type Err = ExperimentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.name() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            ExperimentError::Invalid {
                field: "figures.format".into(),
                rule: format!("must be svg, png or pdf (got `{s}`)"),
            }
        })
    }
}

/// The system's fonts, loaded once, with the generic `sans-serif` family (the figures' font)
/// mapped to a sans-serif face that is installed.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_system_fonts();
            let families: Vec<String> =
                db.faces().flat_map(|face| face.families.iter().map(|(name, _)| name.clone())).collect();
            let preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica", "FreeSans"];
            let sans = preferred
                .iter()
                .find(|p| families.iter().any(|f| f == *p))
                .map(|p| p.to_string())
                .or_else(|| families.iter().find(|f| f.contains("Sans")).cloned())
                .or_else(|| families.first().cloned());
            if let Some(sans) = sans {
                db.set_sans_serif_family(sans.clone());
                db.set_serif_family(sans);
            }
            Arc::new(db)
        })
        .clone()
}

/// The SVG document `svg` parsed for rendering, with the system's fonts.
fn tree(svg: &str) -> Result<usvg::Tree, String> {
    let options = usvg::Options { fontdb: fonts(), font_family: "sans-serif".into(), ..usvg::Options::default() };
    usvg::Tree::from_str(svg, &options).map_err(|e| format!("the SVG could not be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = "<svg width=\"120\" height=\"80\" viewBox=\"0 0 120 80\" xmlns=\"http://www.w3.org/2000/svg\">\
        <rect x=\"10\" y=\"10\" width=\"50\" height=\"30\" fill=\"#0072b2\"/>\
        <text x=\"10\" y=\"70\" font-family=\"sans-serif\" font-size=\"12\">k = 0</text></svg>";

    #[test]
    fn formats_parse_by_name_and_refuse_others() {
        assert_eq!("png".parse::<FigureFormat>().unwrap(), FigureFormat::Png);
        assert_eq!(" PDF ".parse::<FigureFormat>().unwrap(), FigureFormat::Pdf);
        let err = "jpeg".parse::<FigureFormat>().unwrap_err().to_string();
        assert!(err.contains("figures.format") && err.contains("svg, png or pdf") && err.contains("jpeg"), "{err}");
        assert_eq!(FigureFormat::Pdf.path_of(std::path::Path::new("d/modes.svg")), std::path::Path::new("d/modes.pdf"));
    }

    #[test]
    fn png_has_the_svg_size_and_draws_its_shapes() {
        let png = FigureFormat::Png.convert(SVG).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let image = tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!((image.width(), image.height()), (120, 80));
        // Inside the rectangle the pixel is its blue, outside white.
        let at = |x: u32, y: u32| image.pixel(x, y).unwrap();
        assert_eq!((at(30, 20).red(), at(30, 20).green(), at(30, 20).blue()), (0, 114, 178));
        assert_eq!((at(100, 20).red(), at(100, 20).green(), at(100, 20).blue()), (255, 255, 255));
    }

    #[test]
    fn pdf_is_one_page_of_the_svg_size() {
        let pdf = FigureFormat::Pdf.convert(SVG).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{:?}", &pdf[..8]);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/MediaBox"), "a page with a media box");
        assert!(text.trim_end().ends_with("%%EOF"));
    }

    #[test]
    fn unreadable_svg_is_a_reason() {
        let err = FigureFormat::Png.convert("<svg").unwrap_err();
        assert!(err.contains("could not be read"), "{err}");
    }
}

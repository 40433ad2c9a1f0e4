//! Charts for the leadership summary, as PNG bytes.
//!
//! Drawn with plotters' bitmap backend and no text at all: the build needs no system fonts,
//! and the Chinese labels live in the e-mail's HTML legend next to the picture, whose colours
//! match the bars.

use plotters::prelude::*;

/// Bar colours, also used by the HTML legend.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
];

pub fn colour(i: usize) -> (u8, u8, u8) {
    PALETTE[i % PALETTE.len()]
}

pub fn css_colour(i: usize) -> String {
    let (r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A bar chart of `values` (one bar per value, left to right), `width`×`height` pixels, PNG.
pub fn bar_chart_png(values: &[u64], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (w, h) = (width as i32, height as i32);
        let (left, right, top, bottom) = (20, w - 20, 20, h - 20);
        let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
        let n = values.len().max(1) as i32;
        let slot = (right - left) / n;
        let gap = (slot / 5).max(2);
        // Light horizontal grid at quarters, so proportions read without numbers.
        for q in 1..=4 {
            let y = bottom - (bottom - top) * q / 4;
            root.draw(&PathElement::new(
                vec![(left, y), (right, y)],
                RGBColor(225, 225, 225),
            ))
            .map_err(|e| e.to_string())?;
        }
        for (i, v) in values.iter().enumerate() {
            let x0 = left + slot * i as i32 + gap;
            let x1 = left + slot * (i as i32 + 1) - gap;
            let bar = ((bottom - top) as f64 * (*v as f64 / max)).round() as i32;
            let (r, g, b) = colour(i);
            root.draw(&Rectangle::new(
                [(x0, bottom - bar), (x1, bottom)],
                RGBColor(r, g, b).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&PathElement::new(
            vec![(left, top), (left, bottom), (right, bottom)],
            BLACK.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    let img = image::RgbImage::from_raw(width, height, rgb).ok_or("buffer size mismatch")?;
    let mut png = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut png),
        image::ImageOutputFormat::Png,
    )
    .map_err(|e| e.to_string())?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png() {
        let png = bar_chart_png(&[3, 12, 0, 7], 480, 240).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (480, 240));
        // The tallest bar (second) reaches near the top in its colour.
        let (r, g, b) = colour(1);
        let slot = (480 - 40) / 4;
        let x = 20 + slot + slot / 2;
        assert_eq!(img.get_pixel(x as u32, 30).0, [r, g, b]);
        // The empty third slot stays white above the axis.
        assert_eq!(
            img.get_pixel((20 + slot * 2 + slot / 2) as u32, 150).0,
            [255, 255, 255]
        );
    }
}

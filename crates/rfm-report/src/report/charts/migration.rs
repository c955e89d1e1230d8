//! The migration matrix between two runs as a heat map.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::DrawResult;
use super::*;

/// The migration matrix as a heat map (for the `compare` command).
pub fn migration_chart(m: &rfm_core::run_folder::Migration) -> Result<Chart> {
    chart!(
        "migration",
        "Customers moving between segments".into(),
        |a| migration(a, m)
    )
}

pub(super) fn migration<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    m: &rfm_core::run_folder::Migration,
) -> DrawResult<DB> {
    let (rows, cols) = (m.matrix.len(), m.after_segments.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Segment migration ({} customers in both runs)",
                m.customers_in_both
            ),
            (FONT, 30),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(260)
        .build_cartesian_2d(-0.5..cols as f64 - 0.5, -0.5..rows as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_label_formatter(&|x| {
            category(*x, cols)
                .map(|j| m.after_segments[j].chars().take(22).collect())
                .unwrap_or_default()
        })
        .y_label_formatter(&|y| {
            category(*y, rows)
                .map(|r| {
                    let i = rows - 1 - r;
                    format!("{i}: {}", m.before_segments[i])
                        .chars()
                        .take(28)
                        .collect()
                })
                .unwrap_or_default()
        })
        .x_desc("after")
        .y_desc("before")
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 20))
        .draw()?;
    for (i, row) in m.matrix.iter().enumerate() {
        let total: usize = row.iter().sum::<usize>().max(1);
        let y = (rows - 1 - i) as f64 - 0.5;
        for (j, &v) in row.iter().enumerate() {
            let share = v as f64 / total as f64;
            let shade = RGBColor(
                (255.0 - 255.0 * share) as u8,
                (255.0 - 141.0 * share) as u8,
                (255.0 - 77.0 * share) as u8,
            );
            let x = j as f64 - 0.5;
            chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled())])?;
            chart.draw_series([Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                BLACK.mix(0.2).stroke_width(1),
            )])?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            chart.draw_series([Text::new(
                format!("{v}"),
                (x + 0.4, y + 0.55),
                (FONT, 20).into_font().color(&ink),
            )])?;
        }
    }
    Ok(())
}

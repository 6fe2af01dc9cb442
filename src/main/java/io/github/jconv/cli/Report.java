package io.github.jconv.cli;

import io.github.jconv.io.AtomicFile;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * `bench --report DIR`: a self-contained index.html with the results table and three PNG charts drawn with
 * XChart: GFLOP/s per layer for every algorithm and peer, the best jconv algorithm's and the peers' share of
 * the measured FMA peak, and the error of each against the float64 reference (log scale).
 */
final class Report {
    private Report() {
    }

    static void write(Path dir, List<BenchCommand.Row> rows, Double peak, Map<String, Object> peers, String backend,
                      int threads) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Files.createDirectories(dir);
        List<String> shapes = new ArrayList<>();
        Map<String, Map<String, BenchCommand.Row>> bySeries = new LinkedHashMap<>();
        for (BenchCommand.Row r : rows) {
            if (!shapes.contains(r.shape())) {
                shapes.add(r.shape());
            }
            String series = r.isPeer() ? r.backend() : r.algorithm();
            bySeries.computeIfAbsent(series, k -> new LinkedHashMap<>()).put(r.shape(), r);
        }
        List<String> layers = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            layers.add("L" + (i + 1));
        }

        Map<String, java.awt.Color> colors = new LinkedHashMap<>();
        CategoryChart gflops = chart("GFLOP/s per layer (" + backend + ", " + threads + " threads)", "GFLOP/s");
        CategoryChart error = chart("max |y - ref| / max |ref| against the float64 reference", "relative error (log)");
        error.getStyler().setYAxisLogarithmic(true);
        error.getStyler().setDefaultSeriesRenderStyle(org.knowm.xchart.CategorySeries.CategorySeriesRenderStyle.Scatter);
        for (Map.Entry<String, Map<String, BenchCommand.Row>> s : bySeries.entrySet()) {
            List<Number> g = new ArrayList<>(), e = new ArrayList<>();
            for (String shape : shapes) {
                BenchCommand.Row r = s.getValue().get(shape);
                g.add(r == null ? 0.0 : r.gflops());
                e.add(r == null ? null : Math.max(r.maxRelError(), 1e-12)); // no marker where the algorithm cannot run
            }
            java.awt.Color c = color(colors, s.getKey());
            gflops.addSeries(s.getKey(), layers, g).setFillColor(c);
            error.addSeries(s.getKey(), layers, e).setMarkerColor(c);
        }
        save(gflops, dir.resolve("gflops"));
        save(error, dir.resolve("error"));
        boolean havePeak = peak != null;
        if (havePeak) {
            CategoryChart pct = chart("share of the measured FMA peak (" + Math.round(peak) + " GFLOP/s)", "% of peak");
            List<Number> best = new ArrayList<>();
            Map<String, List<Number>> peerPct = new LinkedHashMap<>();
            for (String shape : shapes) {
                double b = 0;
                for (BenchCommand.Row r : rows) {
                    if (r.shape().equals(shape) && r.pctPeak() != null) {
                        if (r.isPeer()) {
                            peerPct.computeIfAbsent(r.backend(), k -> new ArrayList<>()).add(r.pctPeak());
                        } else {
                            b = Math.max(b, r.pctPeak());
                        }
                    }
                }
                best.add(b);
            }
            pct.addSeries("jconv (best algorithm)", layers, best).setFillColor(color(colors, "jconv (best algorithm)"));
            peerPct.forEach((name, values) -> {
                if (values.size() == layers.size()) {
                    pct.addSeries(name, layers, values).setFillColor(color(colors, name));
                }
            });
            save(pct, dir.resolve("peak"));
        }

        StringBuilder html = new StringBuilder();
        html.append("<!doctype html><html><head><meta charset=\"utf-8\"><title>jconv bench</title><style>")
                .append("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}")
                .append("td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td.l,th.l{text-align:left}")
                .append("img{max-width:100%;display:block;margin:1em 0}</style></head><body>")
                .append("<h1>jconv bench</h1><p>backend <b>").append(esc(backend)).append("</b>, ").append(threads)
                .append(" thread(s)").append(havePeak ? ", measured FMA peak " + Math.round(peak) + " GFLOP/s" : "")
                .append(". Peers: ");
        peers.forEach((k, v) -> html.append(esc(k)).append(" ").append(esc(String.valueOf(v))).append("; "));
        html.append("</p><img src=\"gflops.png\" alt=\"GFLOP/s per layer\">");
        if (havePeak) {
            html.append("<img src=\"peak.png\" alt=\"share of peak\">");
        }
        html.append("<img src=\"error.png\" alt=\"error per algorithm\"><h2>Layers</h2><table><tr><th class=l>layer</th>")
                .append("<th class=l>shape N,C,H,W,K,R,S,stride,pad,dilation,groups</th></tr>");
        for (int i = 0; i < shapes.size(); i++) {
            html.append("<tr><td class=l>").append(layers.get(i)).append("</td><td class=l>").append(esc(shapes.get(i)))
                    .append("</td></tr>");
        }
        html.append("</table><h2>Results</h2><table><tr><th class=l>layer</th><th class=l>op</th><th class=l>backend</th>")
                .append("<th class=l>algorithm</th><th>median ms</th><th>min-max ms</th><th>GFLOP/s</th><th>% peak</th>")
                .append("<th>ratio to best peer</th><th>max rel error</th></tr>");
        for (BenchCommand.Row r : rows) {
            html.append("<tr><td class=l>").append(layers.get(shapes.indexOf(r.shape()))).append("</td><td class=l>")
                    .append(esc(r.op())).append("</td><td class=l>").append(esc(r.backend())).append("</td><td class=l>")
                    .append(esc(r.algorithm())).append("</td><td>").append(String.format("%.3f", r.medianMs())).append("</td><td>")
                    .append(String.format("%.3f-%.3f", r.minMs(), r.maxMs())).append("</td><td>")
                    .append(String.format("%.1f", r.gflops())).append("</td><td>")
                    .append(r.pctPeak() == null ? "n/a" : String.format("%.1f%%", r.pctPeak())).append("</td><td>")
                    .append(r.ratio() == null ? "n/a" : String.format("%.2f", r.ratio())).append("</td><td>")
                    .append(String.format("%.2e", r.maxRelError())).append("</td></tr>");
        }
        html.append("</table></body></html>\n");
        AtomicFile.write(dir.resolve("index.html"), html.toString().getBytes(StandardCharsets.UTF_8));
    }

    private static final java.awt.Color[] PALETTE = {new java.awt.Color(0x4C72B0), new java.awt.Color(0xDD8452),
            new java.awt.Color(0x55A868), new java.awt.Color(0xC44E52), new java.awt.Color(0x8172B3),
            new java.awt.Color(0x937860), new java.awt.Color(0xDA8BC3), new java.awt.Color(0x8C8C8C)};

    /** The same series gets the same color in every chart. */
    private static java.awt.Color color(Map<String, java.awt.Color> colors, String series) {
        return colors.computeIfAbsent(series, k -> PALETTE[colors.size() % PALETTE.length]);
    }

    private static CategoryChart chart(String title, String yTitle) {
        CategoryChart c = new CategoryChartBuilder().width(1400).height(560).title(title).xAxisTitle("layer (table below)")
                .yAxisTitle(yTitle).build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        c.getStyler().setOverlapped(false);
        c.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
        return c;
    }

    private static void save(CategoryChart chart, Path withoutExtension) throws IOException {
        BitmapEncoder.saveBitmap(chart, withoutExtension.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}

using System.Globalization;
using System.Net;
using System.Text;

namespace Lab.Bench;

/// <summary>
/// The soak's memory curve as a standalone SVG (no script, so a Markdown page such as bench/README.md shows it):
/// memory in MB against the run's seconds, one line per reading, the close-mode slices shaded.
/// </summary>
public static class SoakChart
{
    static readonly (string Name, string Colour, Func<SoakSample, long> Value)[] Series =
    [
        ("RSS as held (after a full GC)", "#d62728", s => s.Held.Rss),
        ("GC committed, as held", "#ff7f0e", s => s.Held.GcCommitted),
        ("RSS live (after an aggressive GC + malloc_trim)", "#1f77b4", s => s.Live.Rss),
        ("malloc free in arenas", "#9467bd", s => s.Live.MallocFree),
        ("malloc in use", "#2ca02c", s => s.Live.MallocInUse),
        ("GC heap, live", "#8c564b", s => s.Live.GcHeap),
    ];

    /// <summary>The SVG text for <paramref name="samples"/>, under <paramref name="title"/>.</summary>
    public static string Svg(IReadOnlyList<SoakSample> samples, string title)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples.Count, 2, nameof(samples));
        const int W = 900, H = 420, L = 60, R = 20, T = 40, B = 120;
        double xMax = samples[^1].At.TotalSeconds, yMax = samples.Max(s => Series.Max(x => x.Value(s))) / 1048576.0;
        double step = NiceStep(yMax / 6);
        yMax = Math.Ceiling(yMax / step) * step;
        double X(double sec) => L + sec / xMax * (W - L - R);
        double Y(double mb) => T + (1 - mb / yMax) * (H - T - B);
        static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
        var svg = new StringBuilder();
        svg.AppendLine($"""<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">""");
        svg.AppendLine($"""<rect width="{W}" height="{H}" fill="white"/>""");
        svg.AppendLine($"""<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{WebUtility.HtmlEncode(title)}</text>""");
        // A slice ends at its sample; it began at the previous one (the first at 0).
        for (int i = 0; i < samples.Count; i++)
        {
            if (samples[i].KeepAlive) continue;
            double a = i == 0 ? 0 : samples[i - 1].At.TotalSeconds, b = samples[i].At.TotalSeconds;
            svg.AppendLine($"""<rect x="{F(X(a))}" y="{T}" width="{F(X(b) - X(a))}" height="{H - T - B}" fill="#eeeeee"/>""");
        }
        for (double v = 0; v <= yMax + step / 2; v += step)
            svg.AppendLine($"""<line x1="{L}" x2="{W - R}" y1="{F(Y(v))}" y2="{F(Y(v))}" stroke="#cccccc"/><text x="{L - 6}" y="{F(Y(v) + 4)}" text-anchor="end">{F(v)}</text>""");
        double xStep = NiceStep(xMax / 8);
        for (double s = 0; s <= xMax; s += xStep)
            svg.AppendLine($"""<text x="{F(X(s))}" y="{H - B + 16}" text-anchor="middle">{F(s)}</text>""");
        svg.AppendLine($"""<text x="{(L + W - R) / 2}" y="{H - B + 32}" text-anchor="middle">seconds (shaded: Connection: close slices)</text>""");
        svg.AppendLine($"""<text x="14" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 {(T + H - B) / 2})">MB</text>""");
        for (int k = 0; k < Series.Length; k++)
        {
            var (name, colour, value) = Series[k];
            var points = string.Join(' ', samples.Select(s => $"{F(X(s.At.TotalSeconds))},{F(Y(value(s) / 1048576.0))}"));
            svg.AppendLine($"""<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>""");
            int col = k % 2, row = k / 2;
            double lx = L + col * 400, ly = H - B + 52 + row * 20;
            svg.AppendLine($"""<line x1="{F(lx)}" x2="{F(lx + 24)}" y1="{F(ly - 4)}" y2="{F(ly - 4)}" stroke="{colour}" stroke-width="3"/><text x="{F(lx + 30)}" y="{F(ly)}">{WebUtility.HtmlEncode(name)}</text>""");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    /// <summary>1, 2 or 5 times a power of ten, at least <paramref name="rough"/>.</summary>
    static double NiceStep(double rough)
    {
        if (rough <= 0) return 1;
        double p = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        foreach (var m in new[] { 1.0, 2, 5, 10 }) if (m * p >= rough) return m * p;
        return 10 * p;
    }
}

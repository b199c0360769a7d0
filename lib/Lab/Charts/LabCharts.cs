using System.Net;
using Lab.Packets;

namespace Lab.Charts;

/// <summary>A named series of (seconds, value) points, e.g. one queue's depth over an experiment.</summary>
public sealed record Series(string Name, IReadOnlyList<double> Seconds, IReadOnlyList<double> Values)
{
    /// <summary>Builds a series from any sequence of samples.</summary>
    public static Series From<T>(string name, IEnumerable<T> samples, Func<T, double> seconds, Func<T, double> value)
    {
        var list = samples.ToList();
        return new Series(name, list.Select(seconds).ToList(), list.Select(value).ToList());
    }
}

/// <summary>
/// The chart shapes the chapters draw, from real readings. Each returns a <see cref="Figure"/>, which the lab's
/// formatter renders (plotly.js included once per page).
/// </summary>
public static class LabCharts
{
    /// <summary>Width and height in pixels of every lab chart (fits a notebook column and a book page).</summary>
    public const int Width = 720, Height = 360;

    /// <summary>Lines over time: one line per series, x in seconds since the experiment began.</summary>
    public static Figure TimeSeries(string title, string yTitle, params Series[] series)
    {
        if (series.Length == 0) throw new ArgumentException("Give at least one series to chart.", nameof(series));
        var traces = series.Select(s => Figure.Scatter(s.Seconds, s.Values, s.Name,
            s.Seconds.Count <= 60 ? ScatterMode.Lines | ScatterMode.Markers : ScatterMode.Lines));
        return Finish(Figure.Combine(traces), title, "seconds", yTitle);
    }

    /// <summary>Vertical bars, one per label (per worker, per client, per shard).</summary>
    public static Figure Bars(string title, string yTitle, IEnumerable<(string Label, double Value)> bars, string? name = null)
    {
        var list = bars.ToList();
        return Finish(Figure.Column(list.Select(b => b.Label), list.Select(b => b.Value), name ?? yTitle), title, "", yTitle);
    }

    /// <summary>Groups of bars: one bar per label in each named group (e.g. connections and busy time per worker).</summary>
    public static Figure GroupedBars(string title, string yTitle, IReadOnlyList<string> labels, params (string Name, IReadOnlyList<double> Values)[] groups) =>
        Finish(Figure.Combine(groups.Select(g => Figure.Column(labels, g.Values, g.Name))), title, "", yTitle);

    /// <summary>
    /// A sequence (ladder) diagram of captured TCP segments between a client and a server: two lifelines, one arrow
    /// per segment, one step down the page per segment in the order they were captured. Each label carries the
    /// segment and its time since the first one: real gaps range from microseconds to seconds, so time is written,
    /// not drawn to scale.
    /// </summary>
    public static Figure Sequence(IEnumerable<TcpSegment> segments, IPEndPoint client, string clientName = "client", string serverName = "server")
    {
        var list = segments.ToList();
        if (list.Count == 0) throw new ArgumentException("No segments to draw: was anything captured?", nameof(segments));
        var t0 = list[0].Time;
        const string gray = "#999999";
        double bottom = -list.Count;
        var traces = new List<Figure>
        {
            Figure.Scatter([0.0, 0.0], [0.4, bottom], clientName, showLegend: false, lineColor: gray),
            Figure.Scatter([1.0, 1.0], [0.4, bottom], serverName, showLegend: false, lineColor: gray),
        };
        for (int i = 0; i < list.Count; i++)
        {
            var s = list[i];
            bool fromClient = s.Source.Equals(client);
            double ms = (s.Time - t0).TotalMilliseconds;
            double x0 = fromClient ? 0 : 1, x1 = fromClient ? 1 : 0;
            double y0 = -i, y1 = -i - 0.5;
            var label = $"{s.Kind} seq {s.Seq}" + (s.Flags.HasFlag(TcpFlags.Ack) ? $" ack {s.Ack}" : "") + (s.PayloadLength > 0 ? $" len {s.PayloadLength}" : "") + $" (+{ms:0.###} ms)";
            // Labels drawn on the chart (not only on hover) so the book, a screenshot or a projector shows them;
            // the arrowhead is a triangle marker at the receiving end.
            traces.Add(Figure.Scatter([x0, (x0 + x1) / 2, x1], [y0, (y0 + y1) / 2, y1], label,
                ScatterMode.Lines | ScatterMode.Markers | ScatterMode.Text, showLegend: false,
                text: ["", label, ""], textPosition: "top center",
                markerSymbols: ["circle", "circle", fromClient ? "triangle-right" : "triangle-left"]));
        }
        return Figure.Combine(traces)
            .WithXAxis($"{clientName} (left)  →  {serverName} (right)", showGrid: false, zeroLine: false)
            .WithYAxis("segments in capture order (time in each label)", showGrid: false, zeroLine: false)
            .WithTitle("Segments on the wire")
            .WithSize(Width, Math.Max(Height, 120 + 70 * list.Count));
    }

    /// <summary>The lab's finish for a chart: a title, both axis titles, <see cref="Width"/> by <see cref="Height"/>.</summary>
    public static Figure Finish(Figure chart, string title, string xTitle, string yTitle) =>
        chart.WithXAxis(xTitle).WithYAxis(yTitle).WithSize(Width, Height).WithTitle(title);
}

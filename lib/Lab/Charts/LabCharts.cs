using System.Net;
using Lab.Packets;
using Plotly.NET;
using Plotly.NET.CSharp;
using PChart = Plotly.NET.CSharp.Chart;

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
/// The chart shapes the chapters draw, built with Plotly.NET from real readings. Each returns a
/// <see cref="GenericChart"/>, which the lab's formatter renders (plotly.js included once per page).
/// </summary>
public static class LabCharts
{
    /// <summary>Width and height in pixels of every lab chart (fits a notebook column and a book page).</summary>
    public const int Width = 720, Height = 360;

    /// <summary>Lines over time: one line per series, x in seconds since the experiment began.</summary>
    public static GenericChart TimeSeries(string title, string yTitle, params Series[] series)
    {
        if (series.Length == 0) throw new ArgumentException("Give at least one series to chart.", nameof(series));
        var traces = series.Select(s => PChart.Line<double, double, string>(
            x: s.Seconds, y: s.Values, Name: s.Name, ShowMarkers: s.Seconds.Count <= 60));
        return Finish(PChart.Combine(traces), title, "seconds", yTitle);
    }

    /// <summary>Vertical bars, one per label (per worker, per client, per shard).</summary>
    public static GenericChart Bars(string title, string yTitle, IEnumerable<(string Label, double Value)> bars, string? name = null)
    {
        var list = bars.ToList();
        var chart = PChart.Column<double, string, string>(values: list.Select(b => b.Value), Keys: new Optional<IEnumerable<string>>(list.Select(b => b.Label), true), Name: name ?? yTitle);
        return Finish(chart, title, "", yTitle);
    }

    /// <summary>Groups of bars: one bar per label in each named group (e.g. connections and busy time per worker).</summary>
    public static GenericChart GroupedBars(string title, string yTitle, IReadOnlyList<string> labels, params (string Name, IReadOnlyList<double> Values)[] groups)
    {
        var traces = groups.Select(g => PChart.Column<double, string, string>(values: g.Values, Keys: new Optional<IEnumerable<string>>(labels, true), Name: g.Name));
        return Finish(PChart.Combine(traces), title, "", yTitle);
    }

    /// <summary>
    /// A sequence (ladder) diagram of captured TCP segments between a client and a server: two lifelines, one arrow
    /// per segment, one step down the page per segment in the order they were captured. Each label carries the
    /// segment and its time since the first one: real gaps range from microseconds to seconds, so time is written,
    /// not drawn to scale.
    /// </summary>
    public static GenericChart Sequence(IEnumerable<TcpSegment> segments, IPEndPoint client, string clientName = "client", string serverName = "server")
    {
        var list = segments.ToList();
        if (list.Count == 0) throw new ArgumentException("No segments to draw: was anything captured?", nameof(segments));
        var t0 = list[0].Time;
        var traces = new List<GenericChart>();
        var gray = Color.fromString("#999999");
        double bottom = -list.Count;
        traces.Add(PChart.Line<double, double, string>(x: new[] { 0.0, 0.0 }, y: new[] { 0.4, bottom }, Name: clientName, ShowLegend: false, LineColor: gray));
        traces.Add(PChart.Line<double, double, string>(x: new[] { 1.0, 1.0 }, y: new[] { 0.4, bottom }, Name: serverName, ShowLegend: false, LineColor: gray));
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
            traces.Add(PChart.Scatter<double, double, string>(
                x: new[] { x0, (x0 + x1) / 2, x1 }, y: new[] { y0, (y0 + y1) / 2, y1 }, mode: StyleParam.Mode.Lines_Markers_Text,
                Name: label, ShowLegend: false, MultiText: new[] { "", label, "" }, TextPosition: StyleParam.TextPosition.TopCenter,
                MultiMarkerSymbol: new[] { StyleParam.MarkerSymbol.Circle, StyleParam.MarkerSymbol.Circle,
                                           fromClient ? StyleParam.MarkerSymbol.TriangleRight : StyleParam.MarkerSymbol.TriangleLeft }));
        }
        var chart = PChart.Combine(traces)
            .WithXAxisStyle<double, double, string>(TitleText: $"{clientName} (left)  →  {serverName} (right)", ShowGrid: false, ZeroLine: false)
            .WithYAxisStyle<double, double, string>(TitleText: "segments in capture order (time in each label)", ShowGrid: false, ZeroLine: false);
        chart = Plotly.NET.Chart.withTitle("Segments on the wire", null).Invoke(chart);
        return chart.WithSize(Width, Math.Max(Height, 120 + 70 * list.Count));
    }

    static GenericChart Finish(GenericChart chart, string title, string xTitle, string yTitle)
    {
        chart = chart.WithXAxisStyle<double, double, string>(TitleText: xTitle)
                     .WithYAxisStyle<double, double, string>(TitleText: yTitle)
                     .WithSize(Width, Height);
        return Plotly.NET.Chart.withTitle(title, null).Invoke(chart);
    }
}

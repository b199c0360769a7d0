using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lab.Charts;

/// <summary>What a scatter trace draws at its points (plotly.js's <c>mode</c>: "lines", "lines+markers", ...).</summary>
[Flags]
public enum ScatterMode
{
    Lines = 1,
    Markers = 2,
    Text = 4,
}

/// <summary>
/// A plotly.js figure built in C#: <c>data</c> (one JSON object per trace) and <c>layout</c>, as
/// <c>Plotly.newPlot</c> takes them. It holds no F#: a host whose process already has another FSharp.Core (the .NET
/// Interactive kernel holds its own) draws it too. Immutable: each builder returns a new figure.
/// </summary>
/// <remarks>Only what the lab draws: scatter and bar traces, any other trace given as JSON, titles, axes, size.</remarks>
public sealed class Figure
{
    static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The 2-D parts of plotly's "plotly" template, which Plotly.NET applied to every chart the lab drew before this
    /// type: blue-grey plot area, white grid, the ten-colour colourway. plotly.js alone draws on white.
    /// </summary>
    const string Template = """
        {"layout":{"title":{"x":0.05},"font":{"color":"#2a3f5f"},"paper_bgcolor":"white","plot_bgcolor":"#E5ECF6",
         "hovermode":"closest","hoverlabel":{"align":"left"},
         "xaxis":{"title":{"standoff":15},"ticks":"","automargin":true,"linecolor":"white","gridcolor":"white","zerolinecolor":"white","zerolinewidth":2},
         "yaxis":{"title":{"standoff":15},"ticks":"","automargin":true,"linecolor":"white","gridcolor":"white","zerolinecolor":"white","zerolinewidth":2},
         "colorway":["#636efa","#EF553B","#00cc96","#ab63fa","#FFA15A","#19d3f3","#FF6692","#B6E880","#FF97FF","#FECB52"]},
         "data":{"bar":[{"marker":{"line":{"color":"#E5ECF6","width":0.5}}}]}}
        """;

    readonly JsonArray _data;
    readonly JsonObject _layout;

    Figure(JsonArray data, JsonObject layout) { _data = data; _layout = layout; }

    /// <summary>
    /// A scatter trace: a line, points or both through (<paramref name="x"/>, <paramref name="y"/>). Per point, optional
    /// <paramref name="text"/> (drawn with <see cref="ScatterMode.Text"/>, at <paramref name="textPosition"/>, a
    /// plotly.js position such as "top center") and <paramref name="markerSymbols"/> (plotly.js names: "circle",
    /// "triangle-right"). A value that is not finite (NaN, ∞) is no reading: it becomes null, a gap.
    /// </summary>
    public static Figure Scatter(IEnumerable<double> x, IEnumerable<double> y, string name, ScatterMode mode = ScatterMode.Lines,
        bool showLegend = true, string? lineColor = null, IEnumerable<string>? text = null, string? textPosition = null,
        IEnumerable<string>? markerSymbols = null)
    {
        var trace = new JsonObject { ["type"] = "scatter", ["name"] = name, ["mode"] = Mode(mode), ["x"] = Numbers(x), ["y"] = Numbers(y) };
        if (!showLegend) trace["showlegend"] = false;
        if (lineColor != null) trace["line"] = new JsonObject { ["color"] = lineColor };
        if (text != null) trace["text"] = Strings(text);
        if (textPosition != null) trace["textposition"] = textPosition;
        if (markerSymbols != null) trace["marker"] = new JsonObject { ["symbol"] = Strings(markerSymbols) };
        return Trace(trace);
    }

    /// <summary>A vertical bar trace: one bar per key, <paramref name="values"/> in the same order.</summary>
    public static Figure Column(IEnumerable<string> keys, IEnumerable<double> values, string name) =>
        Trace(new JsonObject { ["type"] = "bar", ["name"] = name, ["x"] = Strings(keys), ["y"] = Numbers(values) });

    /// <summary>
    /// Any other plotly.js trace, written as its JSON (e.g. a heatmap); it must name its <c>type</c>. The figure keeps
    /// a copy.
    /// </summary>
    public static Figure Trace(JsonObject trace)
    {
        if (trace["type"] is null) throw new ArgumentException("A plotly.js trace names its \"type\" (scatter, bar, heatmap, ...).", nameof(trace));
        return new Figure(new JsonArray(trace.DeepClone()), new JsonObject());
    }

    /// <summary>All traces of <paramref name="figures"/> in one figure, in order; their layouts merged, later ones winning.</summary>
    public static Figure Combine(IEnumerable<Figure> figures)
    {
        var data = new JsonArray();
        var layout = new JsonObject();
        foreach (var f in figures)
        {
            foreach (var t in f._data) data.Add(t!.DeepClone());
            Merge(layout, f._layout);
        }
        return new Figure(data, layout);
    }

    /// <summary>The figure's title, above the plot.</summary>
    public Figure WithTitle(string title) => WithLayout(new JsonObject { ["title"] = new JsonObject { ["text"] = title } });

    /// <summary>
    /// The x axis: its title, a log scale (true) or linear (false), its grid lines and zero line. What is left null
    /// stays as it was.
    /// </summary>
    public Figure WithXAxis(string? title = null, bool? log = null, bool? showGrid = null, bool? zeroLine = null) =>
        WithLayout(new JsonObject { ["xaxis"] = Axis(title, log, showGrid, zeroLine) });

    /// <summary>The y axis, as <see cref="WithXAxis"/>.</summary>
    public Figure WithYAxis(string? title = null, bool? log = null, bool? showGrid = null, bool? zeroLine = null) =>
        WithLayout(new JsonObject { ["yaxis"] = Axis(title, log, showGrid, zeroLine) });

    /// <summary>Width and height in pixels.</summary>
    public Figure WithSize(int width, int height) => WithLayout(new JsonObject { ["width"] = width, ["height"] = height });

    /// <summary>Width in pixels, when set.</summary>
    public int? Width => (int?)_layout["width"];

    /// <summary>Height in pixels, when set.</summary>
    public int? Height => (int?)_layout["height"];

    /// <summary>Each trace's plotly.js type, in order ("scatter", "bar", ...).</summary>
    public IReadOnlyList<string> TraceTypes => _data.Select(t => (string)t!["type"]!).ToList();

    /// <summary>
    /// <c>{"data":[...],"layout":{...},"config":{}}</c>: the arguments of <c>Plotly.newPlot</c>. The layout carries the
    /// lab's template; config is empty (hosts add <c>responsive</c>).
    /// </summary>
    public JsonObject ToJsonObject()
    {
        var layout = (JsonObject)_layout.DeepClone();
        layout["template"] ??= JsonNode.Parse(Template);
        return new JsonObject { ["data"] = _data.DeepClone(), ["layout"] = layout, ["config"] = new JsonObject() };
    }

    /// <summary><see cref="ToJsonObject"/> as text; non-ASCII stays as written, so labels read the same in the HTML.</summary>
    public string ToJson() => ToJsonObject().ToJsonString(JsonOptions);

    Figure WithLayout(JsonObject change)
    {
        var layout = (JsonObject)_layout.DeepClone();
        Merge(layout, change);
        return new Figure((JsonArray)_data.DeepClone(), layout);
    }

    static JsonObject Axis(string? title, bool? log, bool? showGrid, bool? zeroLine)
    {
        var axis = new JsonObject();
        if (title != null) axis["title"] = new JsonObject { ["text"] = title };
        if (log is bool l) axis["type"] = l ? "log" : "linear";
        if (showGrid is bool g) axis["showgrid"] = g;
        if (zeroLine is bool z) axis["zeroline"] = z;
        return axis;
    }

    /// <summary>Copies <paramref name="from"/> into <paramref name="into"/>: objects merge key by key, anything else replaces.</summary>
    static void Merge(JsonObject into, JsonObject from)
    {
        foreach (var (key, value) in from)
        {
            if (value is JsonObject o && into[key] is JsonObject existing) Merge(existing, o);
            else into[key] = value?.DeepClone();
        }
    }

    static string Mode(ScatterMode mode)
    {
        var parts = new List<string>(3);
        if (mode.HasFlag(ScatterMode.Lines)) parts.Add("lines");
        if (mode.HasFlag(ScatterMode.Markers)) parts.Add("markers");
        if (mode.HasFlag(ScatterMode.Text)) parts.Add("text");
        return parts.Count == 0 ? "none" : string.Join('+', parts);
    }

    static JsonArray Numbers(IEnumerable<double> values) =>
        new(values.Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null).ToArray<JsonNode?>());

    static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
}

using System.Text.Json.Nodes;
using Lab.Charts;
using Lab.Display;

namespace Lab.Tests.Charts;

/// <summary>Each builder writes what plotly.js reads (https://plotly.com/javascript/reference/): the keys and values checked here.</summary>
public class FigureTests
{
    /// <summary>The figure as plotly.js receives it, parsed back from the text.</summary>
    internal static JsonObject Parse(Figure f) => JsonNode.Parse(f.ToJson())!.AsObject();

    static double?[] Numbers(JsonNode? a) => a!.AsArray().Select(v => (double?)v).ToArray();
    static string?[] Strings(JsonNode? a) => a!.AsArray().Select(v => (string?)v).ToArray();

    [Fact]
    public void TheJsonHasDataLayoutAndConfigOnly()
    {
        var json = Parse(Figure.Scatter([1], [2], "a"));
        Assert.Equal(["data", "layout", "config"], json.Select(kv => kv.Key));
        Assert.Single(json["data"]!.AsArray());
        Assert.Empty(json["config"]!.AsObject());
        // The look Plotly.NET gave every chart: plotly's template, blue-grey plot area.
        Assert.Equal("#E5ECF6", (string?)json["layout"]!["template"]!["layout"]!["plot_bgcolor"]);
    }

    [Fact]
    public void AScatterTraceCarriesItsPointsNameAndMode()
    {
        var t = Parse(Figure.Scatter([0, 0.5, 1], [3, 4, 5], "accept queue"))["data"]![0]!;
        Assert.Equal("scatter", (string?)t["type"]);
        Assert.Equal("lines", (string?)t["mode"]);
        Assert.Equal("accept queue", (string?)t["name"]);
        Assert.Equal([0, 0.5, 1], Numbers(t["x"]));
        Assert.Equal([3, 4, 5], Numbers(t["y"]));
        // Defaults are left to plotly.js, not written.
        Assert.Null(t["showlegend"]);
        Assert.Null(t["marker"]);
        Assert.Null(t["line"]);

        Assert.Equal("markers", (string?)Parse(Figure.Scatter([1], [1], "p", ScatterMode.Markers))["data"]![0]!["mode"]);
        Assert.Equal("lines+markers", (string?)Parse(Figure.Scatter([1], [1], "p", ScatterMode.Lines | ScatterMode.Markers))["data"]![0]!["mode"]);
    }

    [Fact]
    public void ALabelledScatterTraceCarriesTextSymbolsColourAndLegendPerPoint()
    {
        var t = Parse(Figure.Scatter([0, 0.5, 1], [0, -0.25, -0.5], "SYN", ScatterMode.Lines | ScatterMode.Markers | ScatterMode.Text,
            showLegend: false, lineColor: "#999999", text: ["", "SYN seq 1", ""], textPosition: "top center",
            markerSymbols: ["circle", "circle", "triangle-right"]))["data"]![0]!;
        Assert.Equal("lines+markers+text", (string?)t["mode"]);
        Assert.False((bool)t["showlegend"]!);
        Assert.Equal("#999999", (string?)t["line"]!["color"]);
        Assert.Equal(["", "SYN seq 1", ""], Strings(t["text"]));
        Assert.Equal("top center", (string?)t["textposition"]);
        Assert.Equal(["circle", "circle", "triangle-right"], Strings(t["marker"]!["symbol"]));
    }

    [Fact]
    public void AValueThatIsNoNumberIsAGapNotInvalidJson()
    {
        var t = Parse(Figure.Scatter([0, 1, 2], [1, double.NaN, double.PositiveInfinity], "y"))["data"]![0]!;
        Assert.Equal([1, null, null], Numbers(t["y"]));
    }

    [Fact]
    public void AColumnTraceIsABarPerKey()
    {
        var t = Parse(Figure.Column(["w0", "w1"], [4, 5], "connections"))["data"]![0]!;
        Assert.Equal("bar", (string?)t["type"]);
        Assert.Equal("connections", (string?)t["name"]);
        Assert.Equal(["w0", "w1"], Strings(t["x"]));
        Assert.Equal([4, 5], Numbers(t["y"]));
    }

    [Fact]
    public void AnyOtherTraceIsCopiedAndMustNameItsType()
    {
        var heatmap = new JsonObject { ["type"] = "heatmap", ["z"] = new JsonArray(new JsonArray(0, 2)) };
        var f = Figure.Trace(heatmap);
        heatmap["type"] = "changed afterwards";
        Assert.Equal(["heatmap"], f.TraceTypes);
        Assert.Equal("[[0,2]]", Parse(f)["data"]![0]!["z"]!.ToJsonString());
        Assert.Throws<ArgumentException>(() => Figure.Trace(new JsonObject { ["z"] = 1 }));
    }

    [Fact]
    public void CombineKeepsEveryTraceInOrderAndMergesLayouts()
    {
        var f = Figure.Combine([
            Figure.Scatter([1], [1], "a").WithXAxis("seconds"),
            Figure.Column(["k"], [2], "b").WithYAxis("count"),
        ]);
        var json = Parse(f);
        Assert.Equal(["a", "b"], json["data"]!.AsArray().Select(t => (string?)t!["name"]));
        Assert.Equal(["scatter", "bar"], f.TraceTypes);
        Assert.Equal("seconds", (string?)json["layout"]!["xaxis"]!["title"]!["text"]);
        Assert.Equal("count", (string?)json["layout"]!["yaxis"]!["title"]!["text"]);
    }

    [Fact]
    public void TitlesAxesAndSizeAreLayout()
    {
        var f = Figure.Scatter([1, 2], [10, 1000], "p99")
            .WithTitle("Latency")
            .WithXAxis("request number", showGrid: false, zeroLine: false)
            .WithYAxis("ms (log scale)", log: true)
            .WithSize(720, 360);
        var layout = Parse(f)["layout"]!;
        Assert.Equal("Latency", (string?)layout["title"]!["text"]);
        Assert.Equal("request number", (string?)layout["xaxis"]!["title"]!["text"]);
        Assert.False((bool)layout["xaxis"]!["showgrid"]!);
        Assert.False((bool)layout["xaxis"]!["zeroline"]!);
        Assert.Null(layout["xaxis"]!["type"]);
        Assert.Equal("log", (string?)layout["yaxis"]!["type"]);
        Assert.Equal("ms (log scale)", (string?)layout["yaxis"]!["title"]!["text"]);
        Assert.Equal(720, (int)layout["width"]!);
        Assert.Equal(360, (int)layout["height"]!);
        Assert.Equal((720, 360), (f.Width, f.Height));

        // A later axis call changes what it names and keeps the rest.
        var relabelled = Parse(f.WithYAxis("milliseconds"))["layout"]!["yaxis"]!;
        Assert.Equal("milliseconds", (string?)relabelled["title"]!["text"]);
        Assert.Equal("log", (string?)relabelled["type"]);
        Assert.Equal("linear", (string?)Parse(f.WithYAxis(log: false))["layout"]!["yaxis"]!["type"]);
    }

    [Fact]
    public void BuildersReturnNewFiguresAndLeaveTheOldOnesAlone()
    {
        var plain = Figure.Scatter([1], [1], "a");
        var titled = plain.WithTitle("t").WithSize(100, 50);
        Assert.Null(Parse(plain)["layout"]!["title"]);
        Assert.Null(plain.Width);
        Assert.Equal("t", (string?)Parse(titled)["layout"]!["title"]!["text"]);
    }

    [Fact]
    public void TheHtmlCarriesTheFigureSizedAndCannotEndItsScriptEarly()
    {
        var f = Figure.Scatter([1], [1], "a </script><b>→").WithSize(720, 360);
        var html = ChartHtml.Fragment(f);
        Assert.Contains("style=\"width:720px;height:360px;\"", html);
        Assert.Contains(ChartHtml.Marker, html);
        Assert.Contains("\"name\":\"a <\\/script><b>→\"", html);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, "</script>"));
        Assert.Equal("Plotly chart: 2 trace(s) (scatter, bar)", ChartHtml.Text(Figure.Combine([f, Figure.Column(["k"], [1], "b")])));
        Assert.Contains("width:100%;", ChartHtml.Fragment(Figure.Column(["k"], [1], "b")));
    }
}

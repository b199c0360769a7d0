using System.Net;
using System.Text.Json.Nodes;
using Lab.Charts;
using Lab.Packets;

namespace Lab.Tests.Charts;

public class LabChartsTests
{
    static JsonArray DataOf(Figure chart) => FigureTests.Parse(chart)["data"]!.AsArray();
    static JsonNode LayoutOf(Figure chart) => FigureTests.Parse(chart)["layout"]!;

    [Fact]
    public void ATimeSeriesCarriesExactlyTheReadingsItWasGiven()
    {
        var chart = LabCharts.TimeSeries("Accept queue", "connections",
            new Series("accept queue", [0, 0.5, 1], [0, 3, 4]),
            new Series("SYN queue", [0, 0.5, 1], [1, 1, 0]));
        var data = DataOf(chart);
        Assert.Equal(2, data.Count);
        Assert.Equal("accept queue", (string?)data[0]!["name"]);
        Assert.Equal("[0,3,4]", data[0]!["y"]!.ToJsonString());
        Assert.Equal("[0,0.5,1]", data[0]!["x"]!.ToJsonString());
        Assert.Equal("SYN queue", (string?)data[1]!["name"]);
        Assert.Equal("[1,1,0]", data[1]!["y"]!.ToJsonString());
        // Few points: each reading shows as a marker on the line.
        Assert.All(data, t => Assert.Equal("lines+markers", (string?)t!["mode"]));
        var layout = LayoutOf(chart);
        Assert.Equal("Accept queue", (string?)layout["title"]!["text"]);
        Assert.Equal("seconds", (string?)layout["xaxis"]!["title"]!["text"]);
        Assert.Equal("connections", (string?)layout["yaxis"]!["title"]!["text"]);
        Assert.Equal((LabCharts.Width, LabCharts.Height), (chart.Width, chart.Height));
        Assert.Equal((720, 360), (LabCharts.Width, LabCharts.Height));

        var many = Enumerable.Range(0, 61).Select(i => (double)i).ToList();
        Assert.Equal("lines", (string?)DataOf(LabCharts.TimeSeries("t", "y", new Series("s", many, many)))[0]!["mode"]);
    }

    [Fact]
    public void BarsAreOneBarTracePerGroup()
    {
        var bars = LabCharts.Bars("Connections per worker", "connections", [("w0", 4), ("w1", 5)]);
        var t = Assert.Single(DataOf(bars));
        Assert.Equal("bar", (string?)t!["type"]);
        Assert.Equal("connections", (string?)t["name"]);
        Assert.Equal("[\"w0\",\"w1\"]", t["x"]!.ToJsonString());
        Assert.Equal("[4,5]", t["y"]!.ToJsonString());
        Assert.Equal("Connections per worker", (string?)LayoutOf(bars)["title"]!["text"]);

        var grouped = DataOf(LabCharts.GroupedBars("Work per thread", "count", ["t0", "t1"], ("accepted", [1, 2]), ("served", [3, 4])));
        Assert.Equal(["accepted", "served"], grouped.Select(g => (string?)g!["name"]));
        Assert.All(grouped, g => Assert.Equal("[\"t0\",\"t1\"]", g!["x"]!.ToJsonString()));
        Assert.Equal("[3,4]", grouped[1]!["y"]!.ToJsonString());
    }

    [Fact]
    public void ASequenceDiagramDrawsTwoLifelinesAndOneLabelledArrowPerSegment()
    {
        var client = new IPEndPoint(IPAddress.Parse("198.18.10.2"), 40000);
        var server = new IPEndPoint(IPAddress.Parse("198.18.10.1"), 8080);
        var t = DateTime.UtcNow;
        var chart = LabCharts.Sequence([
            new TcpSegment(t, client, server, TcpFlags.Syn, 1, 0, 64240, 0),
            new TcpSegment(t.AddMilliseconds(0.1), server, client, TcpFlags.Syn | TcpFlags.Ack, 9, 2, 65160, 0),
        ], client);
        var data = DataOf(chart);
        Assert.Equal(4, data.Count);
        Assert.All(data.Take(2), l => Assert.Equal("lines", (string?)l!["mode"]));
        Assert.All(data, l => Assert.False((bool)l!["showlegend"]!));
        var syn = data[2]!;
        Assert.Equal("lines+markers+text", (string?)syn["mode"]);
        Assert.Equal("SYN seq 1 (+0 ms)", (string?)syn["text"]![1]);
        Assert.Equal("[0,0.5,1]", syn["x"]!.ToJsonString());
        Assert.Equal("triangle-right", (string?)syn["marker"]!["symbol"]![2]);
        var synAck = data[3]!;
        Assert.Equal("SYN-ACK seq 9 ack 2 (+0.1 ms)", (string?)synAck["text"]![1]);
        Assert.Equal("[1,0.5,0]", synAck["x"]!.ToJsonString());
        Assert.Equal("triangle-left", (string?)synAck["marker"]!["symbol"]![2]);
        var layout = LayoutOf(chart);
        Assert.Equal("Segments on the wire", (string?)layout["title"]!["text"]);
        Assert.False((bool)layout["xaxis"]!["showgrid"]!);
        Assert.Equal(LabCharts.Height, chart.Height);
        Assert.Throws<ArgumentException>(() => LabCharts.Sequence([], client));
    }
}

using System.Net;
using System.Text.RegularExpressions;
using Lab.Charts;
using Lab.Packets;
using Plotly.NET;

namespace Lab.Tests.Charts;

public class LabChartsTests
{
    static string DataOf(GenericChart chart) =>
        Regex.Match(GenericChart.toChartHTML(chart), @"var data = (\[.*?\]);\n", RegexOptions.Singleline).Groups[1].Value;

    [Fact]
    public void ATimeSeriesCarriesExactlyTheReadingsItWasGiven()
    {
        var chart = LabCharts.TimeSeries("Accept queue", "connections",
            new Series("accept queue", [0, 0.5, 1], [0, 3, 4]),
            new Series("SYN queue", [0, 0.5, 1], [1, 1, 0]));
        var data = DataOf(chart);
        Assert.Contains("\"name\":\"accept queue\"", data);
        Assert.Contains("\"y\":[0.0,3.0,4.0]", data);
        Assert.Contains("\"name\":\"SYN queue\"", data);
        Assert.Contains("Accept queue", GenericChart.toChartHTML(chart));
    }

    [Fact]
    public void BarsAndSequenceDiagramsBuild()
    {
        var bars = DataOf(LabCharts.Bars("Connections per worker", "connections", [("w0", 4), ("w1", 5)]));
        Assert.Contains("\"x\":[\"w0\",\"w1\"]", bars);
        var client = new IPEndPoint(IPAddress.Parse("198.18.10.2"), 40000);
        var server = new IPEndPoint(IPAddress.Parse("198.18.10.1"), 8080);
        var t = DateTime.UtcNow;
        var seq = DataOf(LabCharts.Sequence([
            new TcpSegment(t, client, server, TcpFlags.Syn, 1, 0, 64240, 0),
            new TcpSegment(t.AddMilliseconds(0.1), server, client, TcpFlags.Syn | TcpFlags.Ack, 9, 2, 65160, 0),
        ], client));
        Assert.Contains("SYN seq 1", seq);
        Assert.Contains("SYN-ACK seq 9 ack 2", seq);
        Assert.Throws<ArgumentException>(() => LabCharts.Sequence([], client));
    }
}

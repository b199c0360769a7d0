using Lab.Display;
using Lab.Hosts;
using Lab.Observe;
using Lab.Sockets;
using Lab.Tests.Sockets;

namespace Lab.Tests.Display;

public class ReadingFormattersTests
{
    [Fact]
    public void ReadingsShowAsTablesAndGaugesNotTypeNames()
    {
        using var listener = Listener.Open("127.0.0.1:0", backlog: 2);
        using var clients = Clients.Open(listener.LocalEndPoint, 2);
        Assert.True(SpinWait.SpinUntil(() => listener.ReadAcceptQueue().Length == 2, TimeSpan.FromSeconds(5)));

        var table = LabFormatters.Bundle(SocketTable.ForEndPoint(listener.LocalEndPoint));
        Assert.Contains("<th>Recv-Q</th>", table["text/html"]);
        Assert.Contains("LISTEN", table["text/html"]);
        Assert.DoesNotContain("Lab.Observe", table["text/plain"]);

        var queues = LabFormatters.Bundle(ListenQueues.ForPort(listener.LocalEndPoint));
        Assert.Contains("accept queue", queues["text/html"]);
        Assert.Contains("2 established", queues["text/html"]);
        Assert.Contains("accept queue 2 (limit 2)", queues["text/plain"]);

        Assert.Contains("accept queue 2 (limit 2)", LabFormatters.Bundle(listener.ReadAcceptQueue())["text/plain"]);

        using var accepted = ((AcceptResult.Accepted)listener.Accept(TimeSpan.FromSeconds(5), ct: TestContext.Current.CancellationToken)).Connection;
        var info = LabFormatters.Bundle(accepted.Info());
        Assert.Contains("Established", info["text/plain"]);
        Assert.Contains("TCP_INFO", info["text/html"]);

        using var watch = NetCounters.Watch();
        using (Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(5))) { }
        Assert.Contains("TcpActiveOpens", LabFormatters.Bundle(watch.Changes)["text/plain"]);
    }

    [Fact]
    public void StringsInsideObjectsShowInPlainText()
    {
        var text = LabFormatters.Bundle(new { Namespace = "lab-x-1-10", count = 3, inner = new { name = "veth" } })["text/plain"];
        Assert.Contains("Namespace: lab-x-1-10", text);
        Assert.Contains("name: veth", text);
        Assert.Contains("count: 3", text);
        var endpoint = LabFormatters.Bundle(new { at = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 80) });
        Assert.Contains("127.0.0.1:80", endpoint["text/plain"]);
        Assert.DoesNotContain("Exception", endpoint["text/plain"] + endpoint["text/html"]);
    }

    [Fact]
    public void ChecksPassAsValuesAndFailAsErrorsNamingTheClaim()
    {
        var ok = Check.Equal(4, 4, "the accept queue holds backlog+1");
        Assert.Contains("✓ the accept queue holds backlog+1", LabFormatters.Bundle(ok)["text/html"]);
        var e = Assert.Throws<CheckFailedException>(() => Check.AtLeast(1, 4, "ListenOverflows grew by at least 4"));
        Assert.Contains("ListenOverflows grew by at least 4", e.Message);
        Assert.Contains("read 1, needed at least 4", e.Message);
    }

    [Fact]
    public void ACellThatNeedsAMissingCapabilityIsSkippedWithTheFix()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN to drop it");
        Needs.Capabilities(Capability.NetAdmin); // held here: no skip
        var e = ThreadCaps.Without((int)Capability.NetAdmin, () =>
            Assert.Throws<CellSkippedException>(() => Needs.Capabilities("the namespace table", Capability.NetAdmin, Capability.NetRaw)));
        Assert.Contains("CAP_NET_ADMIN", e.Reason);
        Assert.DoesNotContain("CAP_NET_RAW", e.Reason);
        Assert.Contains("--cap-add=NET_ADMIN", e.Reason);
        Assert.Equal("the namespace table", e.WouldShow);
    }

    /// <summary>
    /// Values no lab formatter claims still print, in every host: HTML writes itself (the catch-all for rows took it
    /// and the library wrote nothing, so a live view's placeholder was blank in the .NET Interactive kernel), and a
    /// sequence of plain values prints as a list (it printed nothing, in both hosts).
    /// </summary>
    [Fact]
    public void HtmlAndListsOfPlainValuesPrintInsteadOfNothing()
    {
        Lab.Display.LabFormatters.RegisterAll();
        Assert.Equal("<b>watching…</b>", Microsoft.DotNet.Interactive.Formatting.Formatter.ToDisplayString(new Microsoft.AspNetCore.Html.HtmlString("<b>watching…</b>"), "text/html"));
        Assert.Equal("<pre>[1, 2, 3]</pre>", Microsoft.DotNet.Interactive.Formatting.Formatter.ToDisplayString(new[] { 1, 2, 3 }, "text/html"));
        Assert.Equal("[a, b]", Microsoft.DotNet.Interactive.Formatting.Formatter.ToDisplayString(new[] { "a", "b" }, "text/plain"));
        var many = Microsoft.DotNet.Interactive.Formatting.Formatter.ToDisplayString(Enumerable.Range(0, 60).ToArray(), "text/plain");
        Assert.EndsWith("49, …]", many);
    }
}

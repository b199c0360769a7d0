using Lab.Cli.Engine;

namespace Lab.Tests.Engine;

// One collection with EngineTests: LabResources' current scope is process-wide.
[Collection(nameof(EngineCollection))]
public class StoppedCellTests
{
    /// <summary>
    /// The sequence an instructor runs: a listener opened in one cell, a blocking accept in the next that is stopped,
    /// and a third cell that connects and accepts. The stopped cell's thread must be out of accept4 (else it takes the
    /// connection), and the listener from the first cell must still be open.
    /// </summary>
    [Fact]
    public async Task AStoppedAcceptLeavesTheEarlierCellsListenerToTheNextCell()
    {
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        await h.RunOk("var l = Lab.Sockets.Listener.Open(\"127.0.0.1:0\");");
        var stopped = await h.Run("l.Accept()", timeout: TimeSpan.FromSeconds(2), ct: TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.TimedOut, stopped.Status);
        Assert.False(stopped.Abandoned, string.Join("\n", stopped.Traceback));
        Assert.Contains("accept4 on 127.0.0.1:", stopped.ErrorValue);
        var next = await h.RunOk("var c = Lab.Sockets.Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(3));\n" +
                                 "var r = l.Accept(TimeSpan.FromSeconds(3));\nc.Dispose(); r.Dispose(); l.Dispose();\nr.GetType().Name");
        Assert.Equal("Accepted", next.Value!.Text.Trim('"'));
    }
}

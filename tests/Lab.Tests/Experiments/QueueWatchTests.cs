using Lab.Experiments;
using Lab.Sockets;

namespace Lab.Tests.Experiments;

public class QueueWatchTests
{
    [Fact]
    public void TheAcceptQueueFillsOnTheChartAsClientsConnect()
    {
        using var listener = Listener.Open("127.0.0.1:0", backlog: 4);
        var frames = new List<object>();
        using var watch = QueueWatch.Start(listener.LocalEndPoint, f => { lock (frames) frames.Add(f); });
        using var clients = Clients.Open(listener.LocalEndPoint, 3);
        Assert.True(SpinWait.SpinUntil(() => watch.PeakAcceptQueue == 3, TimeSpan.FromSeconds(10)), "peak " + watch.PeakAcceptQueue);
        watch.Stop();
        Assert.NotEmpty(frames);
        Assert.Equal(4, watch.Samples[^1].Value.AcceptLimit);
        var html = Lab.Display.ChartHtml.Fragment(watch.Chart());
        Assert.Contains("accept queue (established, not yet accepted)", html);
    }

    [Fact]
    public void WaitUntilReturnsOnceAReadingHoldsAndFalseWhenTimeRunsOut()
    {
        using var listener = Listener.Open("127.0.0.1:0", backlog: 4);
        using var watch = QueueWatch.Start(listener.LocalEndPoint);
        Assert.False(watch.WaitUntil(r => r.AcceptQueue > 0, TimeSpan.FromMilliseconds(100)));
        using var clients = Clients.Open(listener.LocalEndPoint, 2);
        Assert.True(watch.WaitUntil(r => r.AcceptQueue == 2, TimeSpan.FromSeconds(10)));
        watch.Stop();
        Assert.False(watch.WaitUntil(r => r.AcceptQueue == 3, TimeSpan.FromSeconds(10)));   // stopped: no reading will come
    }
}

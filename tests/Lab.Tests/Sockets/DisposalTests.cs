using Lab.Sockets;

namespace Lab.Tests.Sockets;

/// <summary>Counts this process's fds, so it runs alone.</summary>
[Collection(nameof(ProcessWide))]
public class DisposalTests
{
    static int OpenFds() => Directory.GetFiles("/proc/self/fd").Length;
    static int Tracked(string what) => LabResources.Count().GetValueOrDefault(what);

    [Fact]
    public void DisposingTwiceIsFine()
    {
        var (l, client, server) = ConnectionTests.Pair();
        l.Dispose(); l.Dispose();
        client.Dispose(); client.Close(); client.Reset();
        server.Reset(); server.Dispose();
        Assert.Throws<ObjectDisposedException>(() => l.TryAccept());
        Assert.Throws<ObjectDisposedException>(() => client.Read(new byte[1]));
        var ep = Epoll.Create(); ep.Dispose(); ep.Dispose();
        var ev = EventFd.Create(); ev.Dispose(); ev.Dispose();
        var g = Clients.Open("127.0.0.1:9", 0); g.Dispose(); g.Dispose();
    }

    [Fact]
    public void TwoHundredListenersAndClientsLeaveNothingBehind()
    {
        GC.Collect(); GC.WaitForPendingFinalizers();
        int baseline = OpenFds();
        int listeners = Tracked("Listener"), connections = Tracked("Connection"), groups = Tracked("ClientGroup");
        for (int i = 0; i < 200; i++)
        {
            using var l = Listener.Open(i % 2 == 0 ? "127.0.0.1:0" : "[::1]:0", backlog: 4);
            using var c = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
            using var s = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.FromSeconds(5), ct: TestContext.Current.CancellationToken)).Connection;
            if (i % 20 == 0) { using var g = Clients.Open(l.LocalEndPoint, 3); }
        }
        Assert.InRange(OpenFds(), 0, baseline + 3);
        Assert.Equal(listeners, Tracked("Listener"));
        Assert.Equal(connections, Tracked("Connection"));
        Assert.Equal(groups, Tracked("ClientGroup"));
    }

    [Fact]
    public void FailedStepsCloseWhatTheyOpened()
    {
        using var first = Listener.Open("127.0.0.1:0");
        int baseline = OpenFds();
        int tracked = Tracked("Listener");
        for (int i = 0; i < 50; i++)
        {
            Assert.Throws<SyscallException>(() => Listener.Open($"127.0.0.1:{first.Port}"));   // bind fails
            Assert.Throws<SyscallException>(() => Listener.Open("192.0.2.1:0"));              // bind fails
            Assert.Throws<SyscallException>(() => Client.Connect("127.0.0.1:1", TimeSpan.FromSeconds(5))); // refused
            Assert.Throws<SyscallException>(() => Client.Connect($"127.0.0.1:{first.Port}", bindTo: "192.0.2.1:0"));
        }
        Assert.InRange(OpenFds(), 0, baseline + 3);
        Assert.Equal(tracked, Tracked("Listener"));
    }

    [Fact]
    public async Task ACancelledCellDisposesItsListenerAndEndsItsAccept()
    {
        Listener l;
        Task<AcceptResult> accepting;
        using (var scope = LabResources.BeginScope())
        {
            l = Listener.Open("127.0.0.1:0");
            int tid;
            (accepting, tid) = ThreadWaits.OnThread(() => l.Accept());
            ThreadWaits.InAccept(tid);   // the accept is blocked in the kernel before the cell's scope ends
            Assert.Empty(scope.DisposeStarted(TimeSpan.FromSeconds(5)));
        }
        // close(2) waits for the in-flight accept4 to return (SafeHandle reference counting): at most one 100 ms slice.
        Assert.True(Eventually.Holds(() => l.Handle.IsClosed, TimeSpan.FromSeconds(5)));
        Assert.True(await Task.WhenAny(accepting, Task.Delay(5000, TestContext.Current.CancellationToken)) == accepting, "Accept did not end after disposal");
    }
}

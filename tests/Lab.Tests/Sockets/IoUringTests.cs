using System.Diagnostics;
using Lab.Interop;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

/// <summary>The io_uring primitive against the real kernel: one multishot accept per listener, receives into provided buffers, sends, waits.</summary>
public class IoUringTests
{
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>Waits (bounded) until the ring holds at least <paramref name="count"/> results, and takes them.</summary>
    static List<Completion> Collect(IoUring ring, int count) => Collect(ring, count, out _);

    static List<Completion> Collect(IoUring ring, int count, out int waits)
    {
        var got = new List<Completion>();
        var clock = Stopwatch.StartNew();
        waits = 0;
        while (got.Count < count && clock.Elapsed < Bound)
        {
            ring.Wait(count - got.Count, TimeSpan.FromMilliseconds(200));
            waits++;
            got.AddRange(ring.Reap());
        }
        return got;
    }

    static Listener OpenListener() => Listener.Open("127.0.0.1:0", 16, new ListenerOptions { NonBlocking = true, Backlog = 16 });

    [Fact]
    public void OneMultishotAcceptTakesEveryConnectionWithoutAnAcceptCallEach()
    {
        using var l = OpenListener();
        using var ring = IoUring.Create(8);
        ring.Accept(l.Handle, userData: 1);
        Assert.Equal(1, ring.Submit());
        var clients = Enumerable.Range(0, 5).Select(_ => Client.Connect(l.LocalEndPoint, Bound)).ToList();
        long entersBefore = ring.Enters;
        var done = Collect(ring, 5, out int waits);
        var accepted = done.Select(c => new Connection(new Fd(c.Result), null, nonBlocking: true)).ToList();
        try
        {
            Assert.Equal(5, done.Count);
            Assert.All(done, c => { Assert.Equal(1UL, c.UserData); Assert.True(c.Result >= 0, c.ToString()); Assert.True(c.More, $"{c}: a multishot accept stays armed"); });
            // Each accepted fd is the server end of one client's connection.
            Assert.Equal(clients.Select(c => c.LocalEndPoint.ToString()).Order(), accepted.Select(a => a.RemoteEndPoint.ToString()).Order());
            // No accept4 at all: the kernel writes each connection's completion into shared memory. Reaping costs no
            // system call; only a wait for results not yet there does (one io_uring_enter each, EINTR aside).
            Assert.InRange(ring.Enters - entersBefore, 0, waits + 2);
            Assert.Equal(0, l.ReadAcceptQueue().Length);
        }
        finally
        {
            foreach (var a in accepted) a.Dispose();
            foreach (var c in clients) c.Dispose();
        }
    }

    [Fact]
    public void AMultishotReceiveFillsProvidedBuffersUntilThePeerCloses()
    {
        var (l, client, server) = ConnectionTests.Pair();
        using (l) using (client) using (server)
        using (var ring = IoUring.Create(8))
        using (var buffers = ProvidedBuffers.Register(ring, group: 3, count: 4, size: 64))
        {
            ring.Receive(server.Handle, buffers, userData: 9);
            ring.Submit();
            var texts = new List<string>();
            foreach (var word in new[] { "hello", "world" })
            {
                Assert.True(client.WriteAll(System.Text.Encoding.ASCII.GetBytes(word)).IsData);
                var c = Assert.Single(Collect(ring, 1));
                Assert.True(c.HasBuffer && c.More, c.ToString());
                texts.Add(System.Text.Encoding.ASCII.GetString(buffers.Read(c.BufferId, c.Result)));
                buffers.Recycle(c.BufferId);
            }
            Assert.Equal(["hello", "world"], texts);
            client.Shutdown(ShutdownHow.Write);
            var end = Assert.Single(Collect(ring, 1));
            Assert.Equal(0, end.Result);     // the peer's FIN
            Assert.False(end.More, end.ToString());
        }
    }

    [Fact]
    public void ASendIsWhatThePeerReads()
    {
        var (l, client, server) = ConnectionTests.Pair();
        using (l) using (client) using (server)
        using (var ring = IoUring.Create(8))
        {
            ring.Send(server.Handle, "HTTP/1.1 200 OK\r\n"u8.ToArray(), userData: 4);
            var c = Assert.Single(Collect(ring, 1));
            Assert.Equal(17, c.Result);
            client.SetReceiveTimeout(Bound);
            var buf = new byte[64];
            var r = client.Read(buf);
            Assert.Equal("HTTP/1.1 200 OK\r\n", System.Text.Encoding.ASCII.GetString(buf, 0, r.Bytes));
        }
    }

    [Fact]
    public async Task AnEventfdPolledByTheRingWakesAWaitingThread()
    {
        using var ring = IoUring.Create(8);
        using var wake = EventFd.Create();
        ring.Poll(wake.Handle, events: 1 /* POLLIN */, userData: 77);
        ring.Submit();
        var waiting = Task.Run(() => { ring.Wait(1, Bound); return ring.Reap(); }, TestContext.Current.CancellationToken);
        Assert.False(await waiting.CompletesWithin(TimeSpan.FromMilliseconds(50)));
        wake.Signal();
        Assert.True(await waiting.CompletesWithin(Bound), "the wait did not end when the eventfd was signalled");
        var c = Assert.Single(await waiting);
        Assert.Equal(77UL, c.UserData);
        Assert.True(c.More, "a multishot poll stays armed");
    }

    [Fact]
    public void RingsAreMadeSoACompletionDoesNotInterruptTheirThread()
    {
        // Without COOP_TASKRUN every completion the network posts from another CPU sends the ring's thread an IPI if it
        // is running: IoUringAccept took 0.52 IPIs per Connection: close request and answered up to 13 % fewer (bench/README.md).
        using var ring = IoUring.Create(8);
        Assert.True(Environment.OSVersion.Version < new Version(5, 19) || (ring.SetupFlags & io_uring.IORING_SETUP_COOP_TASKRUN) != 0,
            $"setup flags 0x{ring.SetupFlags:x}: IORING_SETUP_COOP_TASKRUN missing on Linux {Environment.OSVersion.Version}");
        Assert.NotEqual(0u, ring.SetupFlags & io_uring.IORING_SETUP_SUBMIT_ALL);
    }

    [Fact]
    public void AWaitWithNothingToCompleteEndsAtItsTimeout()
    {
        using var ring = IoUring.Create(8);
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, ring.Wait(1, TimeSpan.FromMilliseconds(100)));
        Assert.InRange(clock.ElapsedMilliseconds, 90, 10_000);
    }

    [Fact]
    public void DisposeCancelsTheAcceptAndClosesAcceptedFdsNobodyReaped()
    {
        using var l = OpenListener();
        var ring = IoUring.Create(8);
        ring.Accept(l.Handle, userData: 1);
        ring.Submit();
        var clients = Enumerable.Range(0, 3).Select(_ => Client.Connect(l.LocalEndPoint, Bound)).ToList();
        try
        {
            var clock = Stopwatch.StartNew();
            while (ring.Ready < 3 && clock.Elapsed < Bound) ring.Wait(3, TimeSpan.FromMilliseconds(200));
            Assert.Equal(3, ring.Ready);
            ring.Dispose();
            // The server ends were closed: each client reads the end of the stream.
            foreach (var c in clients)
            {
                c.SetReceiveTimeout(Bound);
                Assert.Equal(IoKind.EndOfStream, c.Read(new byte[8]).Kind);
            }
            // The accept was cancelled: a new connection stays in the accept queue.
            using var late = Client.Connect(l.LocalEndPoint, Bound);
            Assert.True(Eventually.Holds(() => l.ReadAcceptQueue().Length == 1), "the late connection was not left queued");
            Assert.Throws<ObjectDisposedException>(() => ring.Submit());
            ring.Dispose();
        }
        finally
        {
            ring.Dispose();
            foreach (var c in clients) c.Dispose();
        }
    }

    [Fact]
    public void BadSizesAreNamed()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => IoUring.Create(3));
        Assert.Contains("power of two", e.Message);
        using var ring = IoUring.Create(8);
        var b = Assert.Throws<ArgumentOutOfRangeException>(() => ProvidedBuffers.Register(ring, 1, count: 6));
        Assert.Contains("power of two", b.Message);
        using var first = ProvidedBuffers.Register(ring, 1, count: 4, size: 16);
        var again = Assert.Throws<SyscallException>(() => ProvidedBuffers.Register(ring, 1, count: 4, size: 16));
        Assert.Contains("already registered", again.Message);
        // Left out, the group is one this ring has not used: a cell re-run beside its previous buffers does not collide.
        using var second = ProvidedBuffers.Register(ring, count: 4, size: 16);
        using var third = ProvidedBuffers.Register(ring, count: 4, size: 16);
        Assert.Equal(3, new[] { first.Group, second.Group, third.Group }.Distinct().Count());
    }

    [Fact]
    public void ASetupFailureSaysWhatToDo()
    {
        Assert.Contains("CONFIG_IO_URING", IoUring.SetupFailure(errno.ENOSYS).Message);
        var eperm = IoUring.SetupFailure(errno.EPERM).Message;
        Assert.Contains("io_uring_setup", eperm);
        Assert.True(eperm.Contains("io_uring_disabled") || eperm.Contains("seccomp"), eperm);
    }
}

using System.Diagnostics;
using System.Text;
using Lab.Load;
using Lab.Sockets;
using Lab.Tests.Engine;
using Lab.Tests.Sockets;
using Lab.Tests.Topologies;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Reliability;

/// <summary>
/// Faulty peers and failures inside the server, as a contract over every topology in <see cref="TopologyCatalog.All"/>:
/// after each fault the topology still serves a normal client, the faulty connection is closed and counted (its
/// event, the live connection count back to zero), and stopping leaves no fd or thread behind. Runs alone: the
/// process's fd count is shared by every test.
/// </summary>
/// <remarks>
/// No topology has an idle timeout (nginx's client_header_timeout, Kestrel's MinRequestBodyDataRate): a slow or
/// silent client holds its connection until it leaves or the server stops. What none of them does is let such a
/// client hold a thread: every model reads from epoll (the blocking-accept variant's acceptors only accept and hand
/// each connection to a reader loop), so a thread never waits on one connection's bytes.
/// </remarks>
[Collection(nameof(ProcessWide))]
public class FaultTests
{
    public static TheoryData<string> All => Labels();

    /// <summary>Starts the topology, runs <paramref name="body"/>, stops it, and checks nothing is left (fds within 2, its threads ended).</summary>
    static void Around(string label, Action<Topology> body, TopologyOptions? options = null, bool expectFailure = false)
    {
        WarmUp();
        GC.Collect(); GC.WaitForPendingFinalizers();
        int fds = OpenFds();
        var t = Started(Factory(label), options ?? Small());
        try { body(t); }
        finally
        {
            var report = t.Stop(TimeSpan.FromSeconds(10));
            Assert.True(report.Stopped, report.ToString());
        }
        if (!expectFailure) Assert.True(t.Failures.Count == 0, string.Join("; ", t.Failures));
        Assert.All(t.Threads, th => Assert.False(th.IsAlive, $"{th.Name} still running"));
        Assert.True(Eventually.Holds(() => OpenFds() <= fds + 2, TimeSpan.FromSeconds(10)), $"{label}: {OpenFds()} fds after stopping, {fds} before");
    }

    static int _warm;

    /// <summary>One topology started, used and stopped before the first count, so what the runtime opens once (lazily) is not counted as a leak.</summary>
    static void WarmUp()
    {
        if (Interlocked.Exchange(ref _warm, 1) == 1) return;
        using var t = Started(o => new SingleThreadLoop(o));
        ServesANormalClient(t);
    }

    static void ServesANormalClient(Topology t)
    {
        using var c = new TestClient(t.LocalEndPoint);
        for (int i = 0; i < 3; i++) Assert.Equal((200, true, TestClient.OkBody), c.Get());
    }

    static void LiveFallsTo(Topology t, long live) =>
        Assert.True(Eventually.Holds(() => t.Metrics.LiveConnections == live, TimeSpan.FromSeconds(10)), $"live connections: {t.Metrics.LiveConnections}, expected {live}; events: {t.Events}");

    [Theory]
    [MemberData(nameof(All))]
    public void APeerThatResetsMidRequestIsClosedAndOthersAreServed(string label) => Around(label, t =>
    {
        // Half a request, then RST (SO_LINGER 0): the server's next recv says ECONNRESET.
        using (var c = new TestClient(t.LocalEndPoint))
        {
            c.Send("GET /sleep?ms=1 HTTP/1.1\r\nHo");
            Assert.True(Eventually.Holds(() => t.Metrics.LiveConnections == 1), "accepted");
            c.Conn.Reset();
        }
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.Reset) == 1), $"one Reset; events: {t.Events}");
        LiveFallsTo(t, 0);

        // A whole request, then RST while its work runs: the answer meets a reset socket (or, in request dispatch, the
        // dispatcher reads the RST first and drops the answer). Either way one more Reset, and nobody waits for it.
        using (var c = new TestClient(t.LocalEndPoint))
        {
            c.Send("GET /sleep?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
            Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.RequestStarted) == 1), "the slow request began");
            c.Conn.Reset();
        }
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.Reset) == 2), $"two Resets; events: {t.Events}");
        LiveFallsTo(t, 0);
        ServesANormalClient(t);
        LiveFallsTo(t, 0);
    });

    [Theory]
    [MemberData(nameof(All))]
    public void AHalfClosedClientGetsItsAnswerThenTheServerCloses(string label) => Around(label, t =>
    {
        // shutdown(SHUT_WR) after a whole request: the FIN says "no more requests", not "no answer wanted"
        // (RFC 9112 section 9.6). The server answers, then reads the FIN and closes its side.
        foreach (var target in new[] { "/", "/sleep?ms=100" })
        {
            using var c = new TestClient(t.LocalEndPoint);
            c.Send($"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
            c.Conn.Shutdown(ShutdownHow.Write);
            Assert.Equal(200, c.ReadResponse().Status);
            Assert.True(c.SeesClose(), "the server closes after the client's FIN");
        }
        // FIN with nothing sent: closed at once.
        using (var c = new TestClient(t.LocalEndPoint))
        {
            c.Conn.Shutdown(ShutdownHow.Write);
            Assert.True(c.SeesClose());
        }
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.ReaderFin) == 3), $"three ReaderFin; events: {t.Events}");
        LiveFallsTo(t, 0);
        ServesANormalClient(t);
    });

    [Theory]
    [MemberData(nameof(All))]
    public void SlowAndSilentClientsHoldConnectionsNotThreads(string label) => Around(label, t =>
    {
        // More idle connections than the topology has threads: a model that gave each connection a thread, or read
        // in its acceptor, would stall here.
        int threads = t.Metrics.Workers.Count;
        int idle = threads + 2;
        var silent = Enumerable.Range(0, idle).Select(_ => new TestClient(t.LocalEndPoint)).ToList(); // connect, never send
        var slow = Enumerable.Range(0, idle).Select(_ => new TestClient(t.LocalEndPoint)).ToList();
        try
        {
            LiveFallsTo(t, 2 * idle); // every one accepted (none left in the accept queue)
            var request = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + new string('a', 20) + "\r\n\r\n");
            // Slowloris: a byte of headers per client every 10 ms; halfway through, a normal client is served.
            void Dribble(int from, int to)
            {
                for (int i = from; i < to; i++)
                {
                    foreach (var s in slow) Assert.True(s.Conn.WriteAll(request.AsSpan(i, 1), TimeSpan.FromSeconds(5)).IsData);
                    Thread.Sleep(10);
                }
            }
            Dribble(0, request.Length / 2);
            ServesANormalClient(t);
            Dribble(request.Length / 2, request.Length - 1);
            Assert.Equal(3, t.Metrics.RequestsServed); // the normal client's; every slow request is still one byte short
            // The last byte completes each slow request: all answered.
            foreach (var s in slow) s.Conn.WriteAll(request.AsSpan(request.Length - 1), TimeSpan.FromSeconds(5));
            foreach (var s in slow) Assert.Equal(200, s.ReadResponse().Status);
        }
        finally
        {
            foreach (var c in silent.Concat(slow)) c.Dispose();
        }
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.ReaderFin) >= 2 * idle), $"each closed client read as a FIN; events: {t.Events}");
        LiveFallsTo(t, 0);
    });

    [Theory]
    [MemberData(nameof(All))]
    public void AThreadThatThrowsStopsTheRunAndTheExceptionReachesTheCaller(string label)
    {
        GC.Collect(); GC.WaitForPendingFinalizers();
        int fds = OpenFds();
        var t = Factory(label)(Small());
        int armed = 0;
        // The tenth request's handler throws on whichever thread does its work, as a bug in a handler would.
        t.RequestHook = (kind, worker) =>
        {
            if (kind == TopologyEventKind.RequestStarted && Interlocked.Increment(ref armed) == 10)
                throw new InvalidOperationException($"injected fault in worker {worker}");
        };
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<TopologyFailedException>(() => TopologyRunner.Run(t, new LoadOptions { Connections = 4, Duration = TimeSpan.FromSeconds(20) }, ct: TestContext.Current.CancellationToken));
        clock.Stop();
        // The load stopped when the thread died, not after its 20 s (nor a 10 s request timeout).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"the run took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.IsType<InvalidOperationException>(e.InnerException);
        Assert.StartsWith("injected fault in worker", e.InnerException!.Message);
        Assert.Single(e.Failures);
        Assert.Contains("InvalidOperationException: injected fault", e.Message);
        Assert.NotNull(e.Stop);
        Assert.True(e.Stop!.Stopped, e.Stop.ToString());
        Assert.False(t.Running);
        Assert.All(t.Threads, th => Assert.False(th.IsAlive, $"{th.Name} still running"));
        Assert.True(Eventually.Holds(() => OpenFds() <= fds + 2, TimeSpan.FromSeconds(10)), $"{label}: {OpenFds()} fds after, {fds} before");
    }

    public static TheoryData<string, EmfilePolicy> EmfileCases()
    {
        var d = new TheoryData<string, EmfilePolicy>();
        foreach (var (label, _) in TopologyCatalog.All) d.Add(label, EmfilePolicy.ReserveFd);
        // Pause runs the same code in every epoll model (EventLoop.ListenerReady); the shared epoll re-arms differently.
        d.Add("SingleThreadLoop", EmfilePolicy.Pause);
        d.Add("SharedSocketAcceptors/SharedEpoll", EmfilePolicy.Pause);
        return d;
    }

    /// <summary>
    /// <c>lab serve</c> in a child process whose RLIMIT_NOFILE is lowered (prlimit --pid) to a few descriptors above
    /// the highest it holds once listening, plus the runtime's headroom (<see cref="TopologyOptions.FdHeadroom"/>):
    /// clients are held open until the server is out of descriptors it may use, then the policy shows (ReserveFd: the
    /// next client is accepted and closed at once; Pause: it waits in the accept queue), the server stays alive, and
    /// once held clients leave, it serves again.
    /// </summary>
    [Theory]
    [MemberData(nameof(EmfileCases))]
    public async Task OutOfDescriptorsInAChildTheServerFollowsItsPolicyAndRecovers(string label, EmfilePolicy policy)
    {
        var name = label.Split('/');
        int port;
        using (var probe = Listener.Open("127.0.0.1:0")) port = probe.Port; // free a moment ago; lab serve binds it next
        var args = new List<string> { "serve", name[0], "--port", port.ToString(), "--quiet", "--duration", "60",
            "--emfile", policy == EmfilePolicy.Pause ? "pause" : "reserve-fd" };
        if (name.Length > 1) args.AddRange(["--variant", name[1]]);
        using var server = Process.Start(LabProcess.Interruptible(args))!;
        var stdout = server.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = server.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var held = new List<TestClient>();
        Exception? failure = null;
        try
        {
            var at = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port);
            // Listening once a connect succeeds (lab serve's stdout is not line-buffered into a pipe). Bounded: 30 s.
            Assert.True(Eventually.Holds(() =>
            {
                if (server.HasExited) return true;
                try { Client.Connect(at, TimeSpan.FromSeconds(1)).Dispose(); return true; }
                catch (SyscallException) { return false; }
            }, TimeSpan.FromSeconds(30)), "lab serve did not listen within 30 s");
            if (server.HasExited)
            {
                await Task.WhenAll(stdout, stderr).CompletesWithin(TimeSpan.FromSeconds(2));
                Assert.Fail($"lab serve exited with {server.ExitCode}: {await stdout} {await stderr}");
            }
            // Warm the request path before the limit. The runtime keeps two descriptors open for each assembly it loads,
            // and the first requests (and tier-1 recompiles after ~30 calls) load more: after the limit, such a load would
            // take a client's descriptor or fail with EMFILE inside the server (seen in CI: 0 of 4 clients served).
            for (int i = 0; i < 3; i++) { using var w = new TestClient(at); Assert.Equal(200, w.Get(keepAlive: false).Status); }
            using (var w = new TestClient(at)) for (int i = 0; i < 200; i++) Assert.Equal(200, w.Get().Status);
            var fdDir = $"/proc/{server.Id}/fd";
            int[] Fds() => Directory.GetFiles(fdDir).Select(f => int.Parse(Path.GetFileName(f))).Order().ToArray();
            // What each descriptor is (socket:[…], a file, /dev/null), for a failure's message.
            Dictionary<int, string> Targets() => Directory.GetFiles(fdDir).ToDictionary(f => int.Parse(Path.GetFileName(f)),
                f => { try { return new FileInfo(f).LinkTarget ?? "?"; } catch (IOException) { return "(closed)"; } });
            // Then until its descriptors stay the same for a second (the warm-up's connections closed, recompiles done).
            var seen = Fds(); var steady = Stopwatch.StartNew(); var settling = Stopwatch.StartNew();
            while (steady.Elapsed < TimeSpan.FromSeconds(1) && settling.Elapsed < TimeSpan.FromSeconds(15))
            {
                Thread.Sleep(100);
                var now = Fds();
                if (!now.SequenceEqual(seen)) { seen = now; steady.Restart(); }
            }
            int highest = seen.Max();
            int holes = highest + 1 - seen.Length;
            int headroom = new TopologyOptions().FdHeadroom;
            int room = headroom + 6;
            int limit = highest + 1 + room;
            var baseline = Targets();
            var (code, _, err) = Run("prlimit", "--pid", server.Id.ToString(), $"--nofile={limit}:{limit}");
            Assert.True(code == 0, $"prlimit: {err}");
            // What the topology says it does (blocking acceptors always pause), from an unstarted one of the same kind.
            EmfilePolicy behaves;
            using (var same = TopologyCatalog.All.Single(e => e.Label == label).Create(new TopologyOptions { EmfilePolicy = policy }))
                behaves = same.EmfileHandling;

            // Hold keep-alive clients until one is not served. At most room - headroom + holes fit.
            TestClient? over = null;
            for (int i = 0; i <= room + holes + 2 && over is null; i++)
            {
                var c = new TestClient(at);
                c.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                try { Assert.Equal(200, c.ReadResponse(TimeSpan.FromSeconds(behaves == EmfilePolicy.Pause ? 1.5 : 5)).Status); held.Add(c); }
                catch (Exception e) when (e is TimeoutException or EndOfStreamException or IOException) { over = c; }
            }
            Assert.True(over is not null, $"{held.Count} clients were all served with the limit {room} above the highest fd ({holes} holes)");
            // Out of descriptors it may use, not a slow server: it stopped with about the headroom still free (the
            // estimate misses descriptors the kernel reserved for a blocked accept4 or open, so not exactly). Whatever
            // else the server opened after the limit was set is named in the message.
            string Newcomers() => string.Join(", ", Targets().Where(t => !baseline.TryGetValue(t.Key, out var was) || was != t.Value)
                .Where(t => !t.Value.StartsWith("socket:")).Select(t => $"{t.Key} -> {t.Value}"));
            int free = limit - Fds().Length;
            Assert.True(free >= headroom / 2 && free <= headroom + 4,
                $"{held.Count} clients served, then one was not, with {free} of {limit} descriptors free (headroom {headroom}); new non-sockets: {Newcomers()}");
            Assert.True(held.Count >= 2, $"only {held.Count} clients were served (room {room}, headroom {headroom}, {holes} holes); new non-sockets since the limit: {Newcomers()}");
            using (over)
            {
                if (behaves == EmfilePolicy.ReserveFd)
                {
                    // Accepted with the spare descriptor and closed at once: the client reads a close, not a wait.
                    Assert.True(over.SeesClose(TimeSpan.FromSeconds(5)), "refused with a close");
                    // Once a held client leaves and the server has read its FIN and closed that fd, the next client
                    // is served (the spare was reopened). Until then a new client is refused the same way: retry.
                    held[0].Dispose(); held.RemoveAt(0);
                    int tries = 0;
                    Assert.True(Eventually.Holds(() =>
                    {
                        tries++;
                        using var after = new TestClient(at);
                        try { return after.Get().Status == 200; }
                        catch (Exception e) when (e is EndOfStreamException or IOException) { return false; }
                    }, TimeSpan.FromSeconds(10)), $"no client served within 10 s of one leaving ({tries} tries)");
                }
                else
                {
                    // Still queued (no response, no close); once held clients leave, a retry accepts and serves it. One
                    // leaving is enough for an event loop; blocking acceptors already parked in accept4 when the budget
                    // ran out each took one more past the mark, so up to one per acceptor must leave.
                    Assert.False(over.SeesClose(TimeSpan.FromMilliseconds(300)));
                    bool parked = label == "SharedSocketAcceptors/BlockingAccept" || label.StartsWith("RoleSplit");
                    int released = 0, status = 0;
                    while (status == 0 && held.Count > 1)
                    {
                        held[0].Dispose(); held.RemoveAt(0); released++;
                        try { status = over.ReadResponse(TimeSpan.FromSeconds(parked ? 2 : 10)).Status; }
                        catch (TimeoutException) when (parked) { }
                    }
                    Assert.True(status == 200, $"the queued client was not served after {released} held clients left");
                }
            }
            foreach (var c in held) Assert.Equal(200, c.Get().Status); // those it had are still served
        }
        catch (Exception e) { failure = e; }
        finally
        {
            foreach (var c in held) c.Dispose();
            server.StandardInput.Close();
            if (!server.HasExited) Run("kill", "-INT", server.Id.ToString()); // Ctrl+C: it stops and prints its table
            if (!server.WaitForExit(10_000)) { server.Kill(); server.WaitForExit(10_000); }
        }
        // A failure carries what lab serve printed (its final table counts the accepted and refused connections; its
        // stderr names an exception inside the server), so a CI log shows why.
        await Task.WhenAll(stdout, stderr).CompletesWithin(TimeSpan.FromSeconds(2));
        string Said(Task<string> t) => t.IsCompletedSuccessfully ? t.Result.Trim() : "(not read)";
        // Alive to the end: Ctrl+C stopped it (exit 0, its summary printed). At its descriptor limit, with no headroom,
        // lab serve died of a thread the runtime could not start ("Out of memory.", exit 134).
        if (failure == null && !(server.HasExited && server.ExitCode == 0 && Said(stdout).Contains("stopped in")))
            failure = new Exception($"lab serve did not stop cleanly on Ctrl+C (exit {(server.HasExited ? server.ExitCode : -1)})");
        if (failure != null)
            throw new Xunit.Sdk.XunitException($"{failure.Message}\nlab serve's stderr: {Said(stderr)}\nlab serve's stdout: {Said(stdout)}", failure);
        TestContext.Current.SendDiagnosticMessage(Said(stdout));
    }
}

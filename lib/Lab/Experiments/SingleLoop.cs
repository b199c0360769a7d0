using Lab.Display;
using System.Diagnostics;
using System.Text;
using Lab.Charts;
using Lab.Observe;
using Lab.Sockets;
using Lab.Http;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>A server's threads while many connections are open, and which threads accepted and read.</summary>
/// <param name="Topology">The server's name.</param>
/// <param name="Connections">Connections the clients opened and kept open.</param>
/// <param name="EstablishedOnServer">The server's ESTABLISHED sockets on its listening address while all were open, read from sock_diag (what ss -tn shows).</param>
/// <param name="ServerThreads">The topology's threads alive at that moment.</param>
/// <param name="TidsThatAccepted">Linux thread ids of the threads that accepted (from the Accepted events).</param>
/// <param name="TidsThatRead">Linux thread ids of the threads that read requests (from the Read events).</param>
/// <param name="RequestsSent">Requests the clients sent (each answered: a request without its response throws).</param>
/// <param name="ConnectionsServed">Connections the server read from (its counters).</param>
/// <param name="RequestsServed">Requests it answered (its counters).</param>
/// <param name="EventsComplete">True when the event ring still held every Accepted and Read event, so the thread ids above cover every call.</param>
public sealed record ManyConnections(string Topology, int Connections, int EstablishedOnServer, int ServerThreads,
    IReadOnlyList<int> TidsThatAccepted, IReadOnlyList<int> TidsThatRead, long RequestsSent, long ConnectionsServed, long RequestsServed, bool EventsComplete)
{
    /// <summary>
    /// Starts <paramref name="topology"/> if needed and opens <paramref name="connections"/> keep-alive connections
    /// (each answered once); with all of them open it reads the server's sockets from sock_diag and counts its
    /// threads; then 4 client threads send <paramref name="rounds"/> more requests on every connection. Closes the
    /// connections, and stops the topology if it was started here.
    /// </summary>
    public static ManyConnections Run(Topology topology, int connections, int rounds = 5)
    {
        ArgumentNullException.ThrowIfNull(topology);
        if (connections is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(connections), connections, "Use 1 to 1000 connections (each is two fds in this process).");
        if (rounds is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(rounds), rounds, "Use 0 to 100 rounds of requests.");
        bool started = !topology.Running;
        if (started) topology.Start();
        var probes = new List<HttpProbe>();
        try
        {
            var ep = topology.LocalEndPoint;
            for (int i = 0; i < connections; i++)
            {
                probes.Add(new HttpProbe(ep));
                probes[i].Get(HttpProbe.Hello);
            }
            int established = SocketTable.ForEndPoint(ep).Count(r => r.State == TcpState.Established && r.Local.Equals(ep));
            int threads = topology.Threads.Count(t => t.IsAlive);
            const int clientThreads = 4;
            var failures = new List<Exception>();
            var clients = Enumerable.Range(0, clientThreads).Select(c => new Thread(() =>
            {
                try
                {
                    for (int r = 0; r < rounds; r++)
                        for (int i = c; i < probes.Count; i += clientThreads) probes[i].Get(HttpProbe.Hello);
                }
                catch (Exception e) { lock (failures) failures.Add(e); }
            }) { IsBackground = true, Name = $"lab-many {c}" }).ToList();
            foreach (var t in clients) t.Start();
            foreach (var t in clients)
                if (!t.Join(TimeSpan.FromSeconds(60))) throw new TimeoutException($"The clients of {topology.Name} did not finish within 60 s.");
            if (failures.Count > 0) throw new IOException($"A client failed against {topology.Name}: {failures[0].Message}", failures[0]);
            var events = topology.Events.Snapshot();
            var accepted = events.Where(e => e.Kind == TopologyEventKind.Accepted).Select(e => e.ThreadId).Distinct().ToList();
            var read = events.Where(e => e.Kind == TopologyEventKind.Read).Select(e => e.ThreadId).Distinct().ToList();
            bool complete = events.Count(e => e.Kind == TopologyEventKind.Accepted) == topology.Events.Count(TopologyEventKind.Accepted)
                         && events.Count(e => e.Kind == TopologyEventKind.Read) == topology.Events.Count(TopologyEventKind.Read);
            var m = topology.Metrics;
            return new ManyConnections(topology.Name, connections, established, threads, accepted, read,
                (long)connections * (rounds + 1), m.Workers.Sum(w => w.ConnectionsServed), m.RequestsServed, complete);
        }
        finally
        {
            foreach (var p in probes) p.Dispose();
            if (started) topology.Dispose();
        }
    }
}

/// <summary>One fast request of a <see cref="StallRun"/>.</summary>
/// <param name="Client">Which fast client sent it (0, 1, ...).</param>
/// <param name="SentAt">When its first byte was written, seconds since the run began.</param>
/// <param name="LatencyMs">From writing the request to reading the whole response, in ms.</param>
public readonly record struct FastRequest(int Client, double SentAt, double LatencyMs);

/// <summary>A client that connects while the slow request runs.</summary>
/// <param name="At">When it began connecting, seconds since the run began.</param>
/// <param name="ConnectMs">How long connect took: the kernel's handshake, no application involved.</param>
/// <param name="WaitedInAcceptQueueMs">
/// From connect returning until the listening socket's accept queue was empty again (TCP_INFO tcpi_unacked, read
/// every millisecond): how long the connection waited for a thread to accept it.
/// </param>
/// <param name="FirstResponseMs">From writing its first request (right after connect) to reading the response.</param>
public sealed record LateClient(double At, double ConnectMs, double WaitedInAcceptQueueMs, double FirstResponseMs)
{
    /// <summary>When the server accepted it (seconds since the run began, as the client saw the accept queue empty).</summary>
    public double AcceptedAt => At + (ConnectMs + WaitedInAcceptQueueMs) / 1000;
}

/// <summary>The numbers of a <see cref="StallRun"/> in one row, to compare runs side by side.</summary>
public sealed record StallSummary(string Run, int FastRequests, double P50Ms, double P99Ms, double MaxMs, double? SlowMs, double? MaxDuringSlowMs, int ClientsStalled, double? LateClientMs);

/// <summary>
/// A few "fast" clients each send <c>GET /</c> on their own keep-alive connection every few milliseconds and record
/// each request's latency; optionally one more client sends a single <c>/work?ms=N</c> (CPU work on the server's
/// thread, not a sleep) partway through, and a late client connects while it runs. Dedicated threads and blocking
/// sockets, so each latency is one request's own.
/// </summary>
public sealed class StallRun
{
    StallRun(string topology, int? slowWorkMs, IReadOnlyList<FastRequest> requests, double? slowStart, double? slowMs, LateClient? late, int clients, IReadOnlyList<string> failures)
    {
        Topology = topology; SlowWorkMs = slowWorkMs; Requests = requests; SlowStartedAt = slowStart; SlowMs = slowMs; Late = late; Clients = clients; Failures = failures;
    }

    /// <summary>The server's name.</summary>
    public string Topology { get; }
    /// <summary>The slow request's CPU work in ms, or null for a run without one.</summary>
    public int? SlowWorkMs { get; }
    /// <summary>Every fast request, in the order they completed.</summary>
    public IReadOnlyList<FastRequest> Requests { get; }
    /// <summary>When the slow request was sent (seconds since the run began).</summary>
    public double? SlowStartedAt { get; }
    /// <summary>The slow request's own latency as its client measured it (ms).</summary>
    public double? SlowMs { get; }
    /// <summary>When the slow request's response arrived (seconds since the run began).</summary>
    public double? SlowEndedAt => SlowStartedAt + SlowMs / 1000;
    /// <summary>The client that connected during the slow request.</summary>
    public LateClient? Late { get; }
    /// <summary>How many fast clients ran.</summary>
    public int Clients { get; }
    /// <summary>What went wrong on a client thread (empty when all is well).</summary>
    public IReadOnlyList<string> Failures { get; }

    /// <summary>Fast requests sent while the slow request was in progress.</summary>
    public IReadOnlyList<FastRequest> DuringSlow => SlowStartedAt is double s && SlowEndedAt is double e
        ? Requests.Where(r => r.SentAt >= s && r.SentAt < e).ToList() : [];

    /// <summary>The longest latency of a fast request sent during the slow one (null without one, 0 if none was sent then).</summary>
    public double? MaxDuringSlowMs => SlowStartedAt is null ? null : DuringSlow.Select(r => r.LatencyMs).DefaultIfEmpty(0).Max();

    /// <summary>The <paramref name="p"/>th percentile (0-100) of the fast requests' latencies, in ms.</summary>
    public double Percentile(double p) => Requests.Count == 0 ? 0 : Stats.Percentile(Requests.Select(r => r.LatencyMs), p);

    /// <summary>The longest fast request (ms).</summary>
    public double MaxMs => Requests.Count == 0 ? 0 : Requests.Max(r => r.LatencyMs);

    /// <summary>Each fast client's longest request (ms), by client.</summary>
    public IReadOnlyList<double> MaxPerClient => Enumerable.Range(0, Clients)
        .Select(c => Requests.Where(r => r.Client == c).Select(r => r.LatencyMs).DefaultIfEmpty(0).Max()).ToList();

    /// <summary>Fast clients that had at least one request take <paramref name="thresholdMs"/> or longer.</summary>
    public int ClientsSlowerThan(double thresholdMs) => MaxPerClient.Count(m => m >= thresholdMs);

    /// <summary>True when the late client was accepted before the slow request's response arrived (null without a late client).</summary>
    public bool? LateAcceptedBeforeSlowEnded => Late is { } l && SlowEndedAt is double e ? l.AcceptedAt < e : null;

    /// <summary>One row: percentiles, the slow request, the worst during it, clients stalled (a request of at least a quarter of the slow work), the late client.</summary>
    public StallSummary Summary(string? name = null) => new(name ?? Topology, Requests.Count, Round(Percentile(50)), Round(Percentile(99)), Round(MaxMs),
        SlowMs is double s ? Round(s) : null, MaxDuringSlowMs is double d ? Round(d) : null,
        SlowWorkMs is int w ? ClientsSlowerThan(w / 4.0) : 0, Late is { } l ? Round(l.FirstResponseMs) : null);

    static double Round(double ms) => Math.Round(ms, 2);

    /// <summary>Latency of every fast request against when it was sent, one colour per client, with the slow request drawn as a box.</summary>
    public Figure Chart(string? title = null) => ChartOf(title ?? $"{Topology}: fast requests{(SlowWorkMs is int w ? $" around one /work?ms={w}" : "")}",
        Requests, Clients, SlowStartedAt, SlowMs);

    static Figure ChartOf(string title, IReadOnlyList<FastRequest> requests, int clients, double? slowStart, double? slowMs)
    {
        // Points, not lines: a closed-loop client has one request in flight, so a line between its last point before
        // the stall and its first after would draw requests that were never sent.
        var traces = new List<Figure>();
        for (int c = 0; c < clients; c++)
        {
            var mine = requests.Where(r => r.Client == c).OrderBy(r => r.SentAt).ToList();
            traces.Add(Figure.Scatter(mine.Select(r => r.SentAt), mine.Select(r => r.LatencyMs), $"fast client {c}", ScatterMode.Markers));
        }
        if (slowStart is double s && slowMs is double ms)
        {
            double e = s + ms / 1000;
            traces.Add(Figure.Scatter([s, s, e, e], [0, ms, ms, 0], "the slow request (sent → answered)"));
        }
        return LabCharts.Finish(Figure.Combine(traces), title, "seconds (when the request was sent)", "latency (ms)");
    }

    /// <summary>
    /// Runs the experiment against <paramref name="topology"/> (started here and stopped at the end if it is not
    /// running). The fast clients connect first, then the slow client, each answered once before the clock starts.
    /// </summary>
    /// <param name="topology">The server.</param>
    /// <param name="fastClients">Clients sending GET /, 1 to 32.</param>
    /// <param name="every">How often each fast client sends (it waits for each response first), 1 ms to 1 s.</param>
    /// <param name="duration">How long the fast clients send, 0.2 to 20 s.</param>
    /// <param name="slowWorkMs">CPU work of the one slow request in ms (1 to 5000), or null for none.</param>
    /// <param name="slowAt">When the slow request is sent (within the duration).</param>
    /// <param name="update">Called about every 250 ms with the chart so far (a live display).</param>
    public static StallRun Run(Topology topology, int fastClients = 4, TimeSpan? every = null, TimeSpan? duration = null,
        int? slowWorkMs = null, TimeSpan? slowAt = null, Action<object>? update = null)
    {
        var live = LiveView.Of(update);
        ArgumentNullException.ThrowIfNull(topology);
        var period = every ?? TimeSpan.FromMilliseconds(10);
        var length = duration ?? TimeSpan.FromSeconds(2);
        var slowTime = slowAt ?? length / 3;
        if (fastClients is < 1 or > 32) throw new ArgumentOutOfRangeException(nameof(fastClients), fastClients, "Use 1 to 32 fast clients (each is a thread).");
        if (period < TimeSpan.FromMilliseconds(1) || period > TimeSpan.FromSeconds(1)) throw new ArgumentOutOfRangeException(nameof(every), period, "Send every 1 ms to 1 s.");
        if (length < TimeSpan.FromMilliseconds(200) || length > TimeSpan.FromSeconds(20)) throw new ArgumentOutOfRangeException(nameof(duration), length, "Run for 0.2 to 20 s.");
        if (slowWorkMs is < 1 or > 5000) throw new ArgumentOutOfRangeException(nameof(slowWorkMs), slowWorkMs, "The slow request's work is 1 to 5000 ms (or null for none).");
        if (slowTime < TimeSpan.Zero || slowTime >= length) throw new ArgumentOutOfRangeException(nameof(slowAt), slowTime, $"Send the slow request within the run (0 to {length.TotalSeconds} s).");

        bool started = !topology.Running;
        if (started) topology.Start();
        var probes = new List<HttpProbe>();
        try
        {
            var ep = topology.LocalEndPoint;
            for (int i = 0; i < fastClients; i++) probes.Add(new HttpProbe(ep));
            var slowProbe = slowWorkMs is null ? null : new HttpProbe(ep);
            if (slowProbe is not null) probes.Add(slowProbe);
            foreach (var p in probes) p.Get(Hello); // every connection accepted and served once before the clock starts

            var requests = new List<FastRequest>();
            var failures = new List<string>();
            double? slowStart = null, slowMs = null;
            LateClient? late = null;
            var clock = Stopwatch.StartNew();
            var threads = new List<Thread>();
            void Spawn(string name, Action body) =>
                threads.Add(new Thread(() => { try { body(); } catch (Exception e) { lock (failures) failures.Add($"{name}: {e.GetType().Name}: {e.Message}"); } })
                { IsBackground = true, Name = $"lab-stall {name}" });

            for (int i = 0; i < fastClients; i++)
            {
                int client = i;
                var probe = probes[i];
                Spawn($"fast{i}", () =>
                {
                    var next = period * client / fastClients; // staggered, so the clients do not send in lockstep
                    while (true)
                    {
                        SleepUntil(clock, next);
                        var at = clock.Elapsed;
                        if (at >= length) break;
                        double ms = probe.Get(Hello);
                        lock (requests) requests.Add(new FastRequest(client, at.TotalSeconds, ms));
                        next += period;
                        if (next < clock.Elapsed) next = clock.Elapsed; // closed loop: a late response delays the next send, no burst after
                    }
                });
            }
            if (slowProbe is not null && slowWorkMs is int work)
            {
                var slowRequest = TinyHttp.BuildRequest(Route.Work, work);
                Spawn("slow", () =>
                {
                    SleepUntil(clock, slowTime);
                    var at = clock.Elapsed.TotalSeconds;
                    double ms = slowProbe.Get(slowRequest, TimeSpan.FromMilliseconds(work) + TimeSpan.FromSeconds(20));
                    lock (requests) { slowStart = at; slowMs = ms; }
                });
                long seenEvents = topology.Events.Total;
                Spawn("late", () =>
                {
                    // A third of the way into the slow work: the server's thread is busy, the kernel is not. Timed from
                    // the server's RequestStarted event for the work (when it records request events), so a client
                    // thread that starts late on a busy machine cannot miss the window.
                    SleepUntil(clock, slowTime);
                    var began = WorkBegan(topology, work, seenEvents, clock, slowTime + TimeSpan.FromSeconds(5)) ?? slowTime;
                    SleepUntil(clock, began + TimeSpan.FromMilliseconds(work / 3.0));
                    var at = clock.Elapsed.TotalSeconds;
                    var t0 = Stopwatch.GetTimestamp();
                    var probe = new HttpProbe(ep);
                    lock (probes) probes.Add(probe);
                    double connectMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    long sent = probe.Send(Hello);
                    long connected = t0 + (long)(connectMs * Stopwatch.Frequency / 1000);
                    var bound = TimeSpan.FromMilliseconds(work) + TimeSpan.FromSeconds(20);
                    while (topology.AcceptQueues()[0].Length > 0 && Stopwatch.GetElapsedTime(connected) < bound) Thread.Sleep(1);
                    double waited = Stopwatch.GetElapsedTime(connected).TotalMilliseconds;
                    double first = probe.Receive(sent, bound);
                    lock (requests) late = new LateClient(at, connectMs, waited, first);
                });
            }
            foreach (var t in threads) t.Start();

            var limit = length + TimeSpan.FromMilliseconds(slowWorkMs ?? 0) + TimeSpan.FromSeconds(30);
            var nextDraw = TimeSpan.FromMilliseconds(250);
            foreach (var t in threads)
            {
                while (!t.Join(25))
                {
                    if (clock.Elapsed > limit) throw new TimeoutException($"The clients against {topology.Name} did not finish within {limit.TotalSeconds:0} s.");
                    if (update is not null && clock.Elapsed >= nextDraw)
                    {
                        List<FastRequest> copy;
                        double? s, m;
                        lock (requests) { copy = requests.ToList(); s = slowStart; m = slowMs; }
                        live!.Frame(ChartOf($"{topology.Name}: fast requests (running…)", copy, fastClients, s, m));
                        nextDraw = clock.Elapsed + TimeSpan.FromMilliseconds(250);
                    }
                }
            }
            var run = new StallRun(topology.Name, slowWorkMs, requests, slowStart, slowMs, late, fastClients, failures);
            live?.Final(run.Chart());
            return run;
        }
        finally
        {
            lock (probes) foreach (var p in probes) p.Dispose();
            if (started) topology.Dispose();
        }
    }

    static readonly byte[] Hello = HttpProbe.Hello;

    /// <summary>When the server recorded RequestStarted for a request of <paramref name="work"/> ms (on <paramref name="clock"/>), or null if it did not by <paramref name="until"/>.</summary>
    static TimeSpan? WorkBegan(Topology topology, int work, long since, Stopwatch clock, TimeSpan until)
    {
        if (!topology.Events.RequestEvents) return null;
        while (clock.Elapsed < until)
        {
            foreach (var e in topology.Events.Since(since))
                if (e.Kind == TopologyEventKind.RequestStarted && e.Value == work) return clock.Elapsed;
            Thread.Sleep(1);
        }
        return null;
    }

    static void SleepUntil(Stopwatch clock, TimeSpan at)
    {
        var left = at - clock.Elapsed;
        if (left > TimeSpan.Zero) Thread.Sleep(left);
    }
}

/// <summary>One blocking keep-alive connection that sends a request and reads exactly one response.</summary>
internal sealed class HttpProbe : IDisposable
{
    /// <summary>GET / on a keep-alive connection.</summary>
    public static readonly byte[] Hello = TinyHttp.BuildRequest(Route.Hello);

    readonly Connection _conn;
    readonly byte[] _buffer = new byte[4096];
    int _have;

    public HttpProbe(System.Net.IPEndPoint server)
    {
        _conn = Client.Connect(server, TimeSpan.FromSeconds(5));
        _conn.NoDelay = true;
    }

    /// <summary>Sends <paramref name="request"/>, reads one whole 2xx response; returns the time between, in ms.</summary>
    public double Get(byte[] request, TimeSpan? timeout = null) => Receive(Send(request, timeout), timeout);

    /// <summary>Writes <paramref name="request"/>; returns the Stopwatch timestamp taken just before.</summary>
    public long Send(byte[] request, TimeSpan? timeout = null)
    {
        long t0 = Stopwatch.GetTimestamp();
        var w = _conn.WriteAll(request, timeout ?? TimeSpan.FromSeconds(20));
        if (!w.IsData) throw new IOException($"The server reset the connection while the request was sent ({w}).");
        return t0;
    }

    /// <summary>Reads one whole 2xx response; returns the ms since <paramref name="t0"/> (from <see cref="Send"/>).</summary>
    public double Receive(long t0, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        while (true)
        {
            int len = TinyHttp.TryParseResponse(_buffer.AsSpan(0, _have), out int status, out _);
            if (len > 0)
            {
                double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                _buffer.AsSpan(len, _have - len).CopyTo(_buffer);
                _have -= len;
                if (status is < 200 or > 299) throw new InvalidDataException($"The server answered {status}.");
                return ms;
            }
            if (len < 0 || _have == _buffer.Length) throw new InvalidDataException("Not an HTTP response: " + Encoding.ASCII.GetString(_buffer, 0, Math.Min(_have, 200)));
            var left = limit - Stopwatch.GetElapsedTime(t0);
            if (left <= TimeSpan.Zero) throw new TimeoutException($"No whole response within {limit.TotalSeconds:0.#} s.");
            int n = _conn.ReadSome(_buffer.AsSpan(_have), left);
            if (n == 0) throw new EndOfStreamException("The server closed the connection before the response was whole.");
            _have += n;
        }
    }

    public void Dispose() => _conn.Dispose();
}

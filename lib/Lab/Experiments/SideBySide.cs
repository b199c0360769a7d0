using System.Diagnostics;
using System.Globalization;
using Lab.Charts;
using Lab.Hosts;
using Lab.Load;
using Lab.Observe;
using Lab.Peers;
using Lab.Http;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>
/// One file in a process's epoll set, as /proc/PID/fdinfo/EPFD lists it: fs/eventpoll.c (ep_show_fdinfo) prints a
/// "tfd: FD events: MASK data: ..." line per registered file, MASK being the events asked for in epoll_ctl, flags included.
/// </summary>
/// <param name="Pid">The process.</param>
/// <param name="EpollFd">The epoll instance's descriptor in that process.</param>
/// <param name="Fd">The registered descriptor.</param>
/// <param name="Events">The mask, hex, as the kernel prints it.</param>
/// <param name="Exclusive">EPOLLEXCLUSIVE (1u &lt;&lt; 28) is set: a wake-up stops at the first epoll with a waiter.</param>
public sealed record EpollEntry(int Pid, int EpollFd, int Fd, string Events, bool Exclusive)
{
    const uint EPOLLEXCLUSIVE = 1u << 28;

    /// <summary>
    /// Every registration of the socket with inode <paramref name="inode"/> in the epoll sets of process <paramref name="pid"/>
    /// (its descriptors read from /proc/PID/fd, the masks from /proc/PID/fdinfo).
    /// </summary>
    public static IReadOnlyList<EpollEntry> OfSocket(int pid, ulong inode)
    {
        var list = new List<EpollEntry>();
        var fds = new Dictionary<int, string>();
        foreach (var link in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            try { if (int.TryParse(Path.GetFileName(link), out var fd)) fds[fd] = new FileInfo(link).LinkTarget ?? ""; }
            catch (IOException) { }
        }
        var target = $"socket:[{inode}]";
        foreach (var (epfd, what) in fds)
        {
            if (what != "anon_inode:[eventpoll]") continue;
            string info;
            try { info = File.ReadAllText($"/proc/{pid}/fdinfo/{epfd}"); }
            catch (IOException) { continue; }
            foreach (var line in info.Split('\n'))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // "tfd:", FD, "events:", MASK, "data:", ...
                if (f.Length < 4 || f[0] != "tfd:" || f[2] != "events:" || !int.TryParse(f[1], out var tfd)) continue;
                if (!fds.TryGetValue(tfd, out var t) || t != target) continue;
                uint mask = uint.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                list.Add(new EpollEntry(pid, epfd, tfd, "0x" + f[3], (mask & EPOLLEXCLUSIVE) != 0));
            }
        }
        return list;
    }
}

/// <summary>One of the chapter's workloads: what every model (and nginx) is asked to serve.</summary>
/// <param name="Name">Its short name, as the charts and tables label it.</param>
/// <param name="Mix">The requests, weighted.</param>
/// <param name="KeepAlive">Whether a connection carries many requests (false: a new connection per request).</param>
public sealed record SideWorkload(string Name, IReadOnlyList<RequestMix> Mix, bool KeepAlive)
{
    /// <summary>Every request is "/": the fixed body at once, on kept-alive connections.</summary>
    public static SideWorkload UniformFast() => new("uniform fast", [RequestMix.Hello()], true);

    /// <summary>
    /// 99% "/" and 1% slow requests on kept-alive connections: "/sleep?ms=<paramref name="slowMs"/>" (the serving thread
    /// blocks) or, with <paramref name="route"/> <see cref="Route.Work"/>, "/work?ms=..." (the serving thread spins on a CPU).
    /// Either way the thread serves no one else meanwhile.
    /// </summary>
    public static SideWorkload OnePercentSlow(int slowMs, Route route = Route.Sleep)
    {
        if (slowMs is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(slowMs), slowMs, "A slow request takes 1 to 1000 ms.");
        if (route is not (Route.Sleep or Route.Work)) throw new ArgumentOutOfRangeException(nameof(route), route, "A slow request is Route.Sleep or Route.Work.");
        return new("1% slow", [RequestMix.Hello(99), RequestMix.Of(route, slowMs, 1)], true);
    }

    /// <summary>Every request is "/" on a connection of its own (<c>Connection: close</c>): a handshake, an accept and a close per request.</summary>
    public static SideWorkload NewConnectionPerRequest() => new("new connection each", [RequestMix.Hello()], false);

    /// <summary>nginx answers every path with the fixed body at once, so it stands in only where every request is "/".</summary>
    public bool NginxCanServe => Mix.All(m => m.Path == "/");

    /// <summary>"99% /, 1% /work?ms=30".</summary>
    public string MixText
    {
        get
        {
            double total = Mix.Sum(m => m.Weight);
            return string.Join(", ", Mix.Select(m => $"{(m.Weight / total * 100).ToString("0.##", CultureInfo.InvariantCulture)}% {m.Path}"));
        }
    }
}

/// <summary>What <see cref="SideBySide.Run"/> runs: worker count, the offered rate, how long each run lasts.</summary>
public sealed record SideBySideOptions
{
    /// <summary>Threads that serve in each model (workers, acceptors or shards), and nginx's worker_processes. Defaults to 2 (this lab's machine has 2 cores).</summary>
    public int Workers { get; init; } = 2;

    /// <summary>
    /// The open-loop rate of the latency runs, requests/s, the same for every model and workload. Defaults to 1000:
    /// with 1% slow requests of 30 ms that keeps a single thread blocked about 30% of the time, and a 0.7 s run gives
    /// 700 latencies, so p99 is read from 7 requests, not from one or two.
    /// </summary>
    public double Rate { get; init; } = 1000;

    /// <summary>How long each latency run (open loop at <see cref="Rate"/>) lasts. Defaults to 0.7 s.</summary>
    public TimeSpan LatencyRun { get; init; } = TimeSpan.FromSeconds(0.7);

    /// <summary>
    /// Latency runs per (model, workload); the one whose "/" requests had the lowest p99 is kept, with its counters.
    /// Another process's burst of CPU time on this machine only ever adds latency, so the quieter of two runs is the
    /// closer reading of the model. Defaults to 2.
    /// </summary>
    public int LatencyRepeats { get; init; } = 2;

    /// <summary>How long each throughput run (closed loop, as fast as answers come) lasts. Defaults to 0.5 s.</summary>
    public TimeSpan ThroughputRun { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>Client connections in the latency runs (open loop: enough to cover a stall). Defaults to 32.</summary>
    public int LatencyConnections { get; init; } = 32;

    /// <summary>Client connections in the throughput runs (closed loop: each has one request outstanding). Defaults to 16.</summary>
    public int ThroughputConnections { get; init; } = 16;

    /// <summary>How long a slow request in the "1% slow" workload holds its thread, ms. Defaults to 30.</summary>
    public int SlowMs { get; init; } = 30;

    /// <summary>
    /// What a slow request does: <see cref="Route.Sleep"/> (its thread blocks, the CPU is free) or <see cref="Route.Work"/>
    /// (its thread spins on a CPU, which on a 2-core machine also takes half the machine). Defaults to <see cref="Route.Sleep"/>.
    /// </summary>
    public Route SlowRoute { get; init; } = Route.Sleep;

    /// <summary>How often the accept queue(s) are read during a run. Defaults to 1 ms (a TCP_INFO read, a few µs).</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Run nginx beside the models where it is installed. Defaults to true.</summary>
    public bool Nginx { get; init; } = true;

    /// <summary>listen(2)'s backlog for every model and for nginx. Defaults to 128.</summary>
    public int Backlog { get; init; } = 128;

    /// <summary>Only the workloads with these names ("uniform fast", "1% slow", "new connection each"); null: all three.</summary>
    public IReadOnlyList<string>? Only { get; init; }

    /// <summary>The workloads to run (all three, or those in <see cref="Only"/>), in the order they run.</summary>
    public IReadOnlyList<SideWorkload> Workloads()
    {
        SideWorkload[] all = [SideWorkload.UniformFast(), SideWorkload.OnePercentSlow(SlowMs, SlowRoute), SideWorkload.NewConnectionPerRequest()];
        return Only is null ? all : all.Where(w => Only.Contains(w.Name)).ToList();
    }

    internal void Validate()
    {
        if (Workers is < 1 or > 16) throw new ArgumentOutOfRangeException(nameof(Workers), Workers, "Workers is 1 to 16.");
        if (Rate is < 10 or > 20_000 || double.IsNaN(Rate)) throw new ArgumentOutOfRangeException(nameof(Rate), Rate, "Rate is 10 to 20000 requests/s.");
        foreach (var (name, d) in new[] { (nameof(LatencyRun), LatencyRun), (nameof(ThroughputRun), ThroughputRun) })
            if (d < TimeSpan.FromMilliseconds(200) || d > TimeSpan.FromSeconds(10))
                throw new ArgumentOutOfRangeException(name, d, $"{name} is 0.2 to 10 s (15 runs of each: keep the chapter short).");
        if (LatencyRepeats is < 1 or > 5) throw new ArgumentOutOfRangeException(nameof(LatencyRepeats), LatencyRepeats, "LatencyRepeats is 1 to 5.");
        if (LatencyConnections is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(LatencyConnections), LatencyConnections, "LatencyConnections is 1 to 1000.");
        if (ThroughputConnections is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(ThroughputConnections), ThroughputConnections, "ThroughputConnections is 1 to 1000.");
        if (SampleEvery < TimeSpan.FromMilliseconds(1) || SampleEvery > TimeSpan.FromSeconds(1))
            throw new ArgumentOutOfRangeException(nameof(SampleEvery), SampleEvery, "SampleEvery is 1 ms to 1 s.");
        SideWorkload.OnePercentSlow(SlowMs, SlowRoute);
        if (Only is not null)
        {
            var names = new[] { SideWorkload.UniformFast().Name, SideWorkload.OnePercentSlow(SlowMs, SlowRoute).Name, SideWorkload.NewConnectionPerRequest().Name };
            var unknown = Only.Where(n => !names.Contains(n)).ToList();
            if (unknown.Count > 0 || Only.Count == 0)
                throw new ArgumentException($"Only names workloads: {string.Join(", ", names.Select(n => $"\"{n}\""))}; '{string.Join("', '", unknown)}' is not one of them.", nameof(Only));
        }
    }
}

/// <summary>One model under one workload: what its latency run and its throughput run measured.</summary>
/// <param name="Model">The model's name (or "nginx").</param>
/// <param name="Workload">The workload's name.</param>
/// <param name="RequestsPerSecond">Throughput run (closed loop): completed requests per second.</param>
/// <param name="P50Ms">Latency run (open loop at the fixed rate, from when each request was due; of <see cref="SideBySideOptions.LatencyRepeats"/> runs, the one with the lowest p99 of "/" requests): median, ms.</param>
/// <param name="P99Ms">Latency run: 99th percentile of every request, ms.</param>
/// <param name="FastP90Ms">Latency run: 90th percentile of the "/" requests alone, ms.</param>
/// <param name="FastP99Ms">Latency run: 99th percentile of the "/" requests alone, ms (the same requests as P99Ms where every request is "/").</param>
/// <param name="BusiestShare">Latency run: the busiest serving thread's share of the work, %: 100/workers is even. Null for one thread.</param>
/// <param name="BalanceOf">What <paramref name="BusiestShare"/> counts: "requests" (the model's own counters) or "CPU time" (nginx workers' /proc/PID/schedstat).</param>
/// <param name="PerWorker">Latency run: requests served by each serving thread (nginx: CPU ms of each worker).</param>
/// <param name="PeakAcceptQueue">The longest accept queue read in either run (summed over shards at one reading).</param>
/// <param name="Connections">Latency run: connections the client opened (each one passed through the accept queue).</param>
/// <param name="Completed">Requests answered, both runs.</param>
/// <param name="Errors">Requests failed, both runs (refused, reset, timed out, bad response).</param>
public sealed record SideRun(string Model, string Workload, double RequestsPerSecond, double P50Ms, double P99Ms, double FastP90Ms,
    double FastP99Ms, double? BusiestShare, string BalanceOf, IReadOnlyList<long> PerWorker, int PeakAcceptQueue, long Connections, long Completed, long Errors);

/// <summary>
/// Chapter 12: the five models from the notes side by side, each with the same number of serving threads, under the
/// same three workloads, with nginx (where installed) as a reference. Each (model, workload) gets two runs from the
/// lab's load generator: a latency run, open loop at a fixed rate (the same offered load for every model; latency
/// counted from when each request was due, so a stall is charged in full), and a throughput run, closed loop.
/// </summary>
public sealed class SideBySide
{
    /// <summary>The model's name the chapter uses for nginx.</summary>
    public const string NginxName = "nginx";

    /// <summary>
    /// The five models, as the chapter runs them. The shared-socket model uses EPOLLEXCLUSIVE: it is how nginx itself
    /// waits on a shared listener on Linux 4.5+ with accept_mutex off (nginx's default since 1.11.3), so it stands
    /// next to the nginx reference.
    /// </summary>
    public static IReadOnlyList<(string Name, Func<TopologyOptions, Topology> Create)> Models { get; } =
    [
        (nameof(SingleThreadLoop), o => new SingleThreadLoop(o)),
        (nameof(DispatcherWorkers), o => new DispatcherWorkers(o)),
        (nameof(RequestDispatch), o => new RequestDispatch(o)),
        ($"{nameof(SharedSocketAcceptors)}/{AcceptorVariant.EpollExclusive}", o => new SharedSocketAcceptors(o, AcceptorVariant.EpollExclusive)),
        (nameof(ReusePortShards), o => new ReusePortShards(o)),
    ];

    readonly List<SideRun> _runs;
    readonly Dictionary<(string, string), (TopologyRun? Latency, TopologyRun? Throughput)> _details;

    SideBySide(SideBySideOptions options, List<SideRun> runs, Dictionary<(string, string), (TopologyRun?, TopologyRun?)> details, string? nginxNote)
    {
        Options = options; _runs = runs; _details = details; NginxNote = nginxNote;
    }

    /// <summary>A result made from rows measured elsewhere (tests, or runs kept from an earlier session).</summary>
    /// <summary>
    /// These runs and <paramref name="other"/>'s together, as one comparison (the chapter measures one workload per
    /// cell, so the reader can predict each before it runs). Charts and the indexer then cover every workload of both.
    /// </summary>
    public SideBySide And(SideBySide other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var names = WorkloadNames.Concat(other.WorkloadNames).Distinct().ToList();
        var details = new Dictionary<(string, string), (TopologyRun?, TopologyRun?)>(_details);
        foreach (var (k, v) in other._details) details[k] = v;
        return new SideBySide(Options with { Only = names }, _runs.Concat(other._runs).ToList(), details, NginxNote ?? other.NginxNote);
    }

    internal static SideBySide From(SideBySideOptions options, IEnumerable<SideRun> runs, string? nginxNote = null) =>
        new(options, runs.ToList(), new Dictionary<(string, string), (TopologyRun?, TopologyRun?)>(), nginxNote);

    /// <summary>The options it ran with.</summary>
    public SideBySideOptions Options { get; }
    /// <summary>Every (model, workload) measured, in the order they ran.</summary>
    public IReadOnlyList<SideRun> Runs => _runs;
    /// <summary>Why nginx is missing from the runs, or null when it ran.</summary>
    public string? NginxNote { get; }
    /// <summary>Whether nginx ran beside the models.</summary>
    public bool NginxRan => _runs.Any(r => r.Model == NginxName);
    /// <summary>The workloads' names, in order.</summary>
    public IReadOnlyList<string> WorkloadNames => Options.Workloads().Select(w => w.Name).ToList();

    /// <summary>The run of <paramref name="model"/> under <paramref name="workload"/>.</summary>
    public SideRun this[string model, string workload] =>
        _runs.FirstOrDefault(r => r.Model == model && r.Workload == workload)
        ?? throw new KeyNotFoundException($"No run of '{model}' under '{workload}'. Models: {string.Join(", ", _runs.Select(r => r.Model).Distinct())}; workloads: {string.Join(", ", WorkloadNames)}.");

    /// <summary>The server's and client's full readings of one model's runs (null for nginx, which has no lab counters).</summary>
    public (TopologyRun? Latency, TopologyRun? Throughput) Detail(string model, string workload) =>
        _details.TryGetValue((model, workload), out var d) ? d : throw new KeyNotFoundException($"No run of '{model}' under '{workload}'.");

    /// <summary>
    /// Runs every model (and nginx, where installed and able) under every workload: 5 × 3 (+ 2) pairs of runs, each
    /// bounded by the options' durations. <paramref name="update"/> (a display's Update) gets the table of finished runs after each one.
    /// </summary>
    public static SideBySide Run(SideBySideOptions? options = null, Action<object>? update = null, CancellationToken ct = default)
    {
        options ??= new SideBySideOptions();
        options.Validate();
        var runs = new List<SideRun>();
        var details = new Dictionary<(string, string), (TopologyRun?, TopologyRun?)>();
        var topo = new TopologyOptions { Workers = options.Workers, Backlog = options.Backlog, RequestEvents = false };
        string? nginxNote = options.Nginx ? (Lab.Peers.Nginx.Installed ? null : $"nginx is not installed ({Lab.Peers.Nginx.Binary} is missing), so it is left out: apt-get install -y nginx adds it.")
            : "nginx was not asked for (SideBySideOptions.Nginx is false).";
        WarmUp(topo, options, ct);
        foreach (var workload in options.Workloads())
        {
            foreach (var (name, create) in Models)
            {
                ct.ThrowIfCancellationRequested();
                var (row, latency, throughput) = RunModel(name, create(topo), workload, options, ct);
                runs.Add(row);
                details[(name, workload.Name)] = (latency, throughput);
                update?.Invoke(runs.ToList());
            }
            if (nginxNote is null && workload.NginxCanServe)
            {
                try
                {
                    runs.Add(RunNginx(workload, options, ct));
                    update?.Invoke(runs.ToList());
                }
                catch (LabSetupException e) { nginxNote = $"nginx did not start here, so it is left out from '{workload.Name}' on: {e.Message}"; }
            }
        }
        return new SideBySide(options, runs, details, nginxNote);
    }

    /// <summary>
    /// A short untimed pass of every model through every workload first: the first requests of a process run code the
    /// JIT has not compiled yet (the load generator's and the servers'), which would be charged to whichever model runs first.
    /// </summary>
    static void WarmUp(TopologyOptions topo, SideBySideOptions o, CancellationToken ct)
    {
        foreach (var workload in o.Workloads())
            foreach (var (_, create) in Models)
            {
                using var t = create(topo);
                TopologyRunner.Run(t, LatencyLoad(workload, o) with { Duration = TimeSpan.FromMilliseconds(60) }, o.SampleEvery, ct: ct);
            }
    }

    /// <summary>
    /// Starts nginx as the chapter runs it (<see cref="SideBySideOptions.Workers"/> workers, one shared listener,
    /// accept_mutex off) and reads how each worker registered the listening socket in its epoll set. Throws
    /// <see cref="CellSkippedException"/> where nginx is not installed.
    /// </summary>
    public static IReadOnlyList<EpollEntry> HowNginxWaits(SideBySideOptions? options = null)
    {
        options ??= new SideBySideOptions();
        if (!Lab.Peers.Nginx.Installed)
            throw new CellSkippedException($"nginx is not installed ({Lab.Peers.Nginx.Binary} is missing): apt-get install -y nginx.",
                "each nginx worker's epoll registration of the shared listening socket, read from /proc/PID/fdinfo");
        using var nginx = Lab.Peers.Nginx.Start(new NginxOptions { Workers = options.Workers, ReusePort = false, AcceptMutex = false, Backlog = options.Backlog });
        var listener = SocketTable.ForEndPoint(nginx.LocalEndPoint).Where(r => r.State == Lab.Sockets.TcpState.Listen).Select(r => r.Inode).Single();
        // Start returns once nginx answers, which one worker is enough for; the others add the listener to their epoll
        // a moment later (seen: one entry of two on a re-run). Read until every worker has registered, at most 5 s.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var entries = nginx.WorkerPids.SelectMany(pid => EpollEntry.OfSocket(pid, listener)).ToList();
            if (entries.Select(e => e.Pid).Distinct().Count() >= nginx.WorkerPids.Count || clock.Elapsed > TimeSpan.FromSeconds(5)) return entries;
            Thread.Sleep(20);
        }
    }

    static LoadOptions LatencyLoad(SideWorkload w, SideBySideOptions o) => new()
    {
        Mix = w.Mix, KeepAlive = w.KeepAlive, Rate = o.Rate, Duration = o.LatencyRun, Connections = o.LatencyConnections,
    };

    static LoadOptions ThroughputLoad(SideWorkload w, SideBySideOptions o) => new()
    {
        Mix = w.Mix, KeepAlive = w.KeepAlive, Duration = o.ThroughputRun, Connections = o.ThroughputConnections,
    };

    static (SideRun, TopologyRun, TopologyRun) RunModel(string name, Topology topology, SideWorkload workload, SideBySideOptions o, CancellationToken ct)
    {
        TopologyRun latency, throughput;
        // A fresh server for every run, so each run's counters (balance) and queue start from zero and one run's
        // connections never linger into the next.
        var create = Models.First(m => m.Name == name).Create;
        using (topology) latency = TopologyRunner.Run(topology, LatencyLoad(workload, o), o.SampleEvery, ct: ct);
        for (int i = 1; i < o.LatencyRepeats; i++)
        {
            using var t = create(topology.Options);
            var run = TopologyRunner.Run(t, LatencyLoad(workload, o), o.SampleEvery, ct: ct);
            if (FastP99(run.Load) < FastP99(latency.Load)) latency = run;
        }
        using (var again = create(topology.Options)) throughput = TopologyRunner.Run(again, ThroughputLoad(workload, o), o.SampleEvery, ct: ct);

        var serving = latency.Server.Workers.Where(w => w.Role is WorkerRole.Worker or WorkerRole.Loop).ToList();
        var perWorker = serving.Select(w => w.RequestsServed).ToList();
        long total = perWorker.Sum();
        double? share = serving.Count < 2 || total == 0 ? null : 100.0 * perWorker.Max() / total;
        int peak = Math.Max(PeakQueue(latency.Queue), PeakQueue(throughput.Queue));
        var row = Row(name, workload, latency.Load, throughput.Load, share, serving.Count < 2 ? "one thread" : "requests", perWorker, peak);
        return (row, latency, throughput);
    }

    /// <summary>The largest accept queue at one reading, summed over the listeners read at the same moment (SO_REUSEPORT shards).</summary>
    static int PeakQueue(IReadOnlyList<QueueSample> samples)
    {
        // The sampler reads listener 0, 1, ... in turn each round, so a round starts at each listener-0 sample.
        int peak = 0, round = 0;
        foreach (var s in samples)
        {
            if (s.Listener == 0) round = 0;
            round += s.Length;
            peak = Math.Max(peak, round);
        }
        return peak;
    }

    static SideRun Row(string model, SideWorkload workload, LoadResult latency, LoadResult throughput, double? share, string balanceOf,
        IReadOnlyList<long> perWorker, int peak)
    {
        var fast = Fast(latency);
        return new SideRun(model, workload.Name, Math.Round(throughput.RequestsPerSecond), Ms(latency.Latency.P50), Ms(latency.Latency.P99), Ms(fast.P90),
            Ms(fast.P99), share is null ? null : Math.Round(share.Value, 1), balanceOf, perWorker, peak, latency.ConnectionsOpened,
            latency.Completed + throughput.Completed, latency.Errors.Total + throughput.Errors.Total);
    }

    static double Ms(TimeSpan t) => Math.Round(t.TotalMilliseconds, 2);

    static SideRun RunNginx(SideWorkload workload, SideBySideOptions o, CancellationToken ct)
    {
        using var nginx = Lab.Peers.Nginx.Start(new NginxOptions { Workers = o.Workers, ReusePort = false, AcceptMutex = false, Backlog = o.Backlog });
        var target = nginx.Url;
        LoadResult? latency = null;
        int q1 = 0;
        List<long> cpu = [];
        for (int i = 0; i < o.LatencyRepeats; i++)
        {
            var cpuBefore = nginx.WorkerPids.Select(CpuNanoseconds).ToList();
            var (run, q) = LoadWatchingQueue(nginx, LatencyLoad(workload, o) with { Target = target }, o, ct);
            if (latency is not null && FastP99(run) >= FastP99(latency)) continue;
            (latency, q1) = (run, q);
            cpu = nginx.WorkerPids.Select((p, k) => (CpuNanoseconds(p) - cpuBefore[k]) / 1_000_000).ToList();
        }
        var (throughput, q2) = LoadWatchingQueue(nginx, ThroughputLoad(workload, o) with { Target = target }, o, ct);
        long total = cpu.Sum();
        double? share = cpu.Count < 2 || total == 0 ? null : 100.0 * cpu.Max() / total;
        return Row(NginxName, workload, latency!, throughput, share, "CPU time", cpu, Math.Max(q1, q2));
    }

    static LatencyHistogram Fast(LoadResult r) => r.LatencyByPath.TryGetValue("/", out var h) ? h : r.Latency;
    static TimeSpan FastP99(LoadResult r) => Fast(r).P99;

    static (LoadResult, int) LoadWatchingQueue(Lab.Peers.Nginx nginx, LoadOptions load, SideBySideOptions o, CancellationToken ct)
    {
        using var sampler = ListenQueues.Sample(nginx.LocalEndPoint.Port, o.SampleEvery, nginx.LocalEndPoint.Address, includeSynQueue: false,
            maxDuration: load.Duration + TimeSpan.FromSeconds(30));
        var result = LoadGenerator.Run(load, ct: ct);
        sampler.Dispose();
        return (result, sampler.Samples.Select(s => s.Value.AcceptQueue).DefaultIfEmpty(0).Max());
    }

    /// <summary>Time process <paramref name="pid"/> has run on a CPU, ns: the first field of /proc/PID/schedstat (its threads summed).</summary>
    internal static long CpuNanoseconds(int pid)
    {
        try { return long.Parse(File.ReadAllText($"/proc/{pid}/schedstat").Split(' ')[0], CultureInfo.InvariantCulture); }
        catch (IOException) { return 0; }
    }


    /// <summary>Throughput (closed loop) per workload, one bar per model, nginx beside them where it ran.</summary>
    public Figure ThroughputChart() => Grouped("Throughput: as fast as the answers come (closed loop)", "requests/s", r => r.RequestsPerSecond);

    /// <summary>p99 of "/" requests at the fixed rate, per workload, log scale.</summary>
    public Figure LatencyChart() => Grouped($"p99 latency of the \"/\" requests at {Options.Rate:N0} requests/s (open loop)", "ms (log scale)", r => r.FastP99Ms)
        .WithYAxis("ms (log scale)", log: true);

    /// <summary>The busiest serving thread's share, per workload (models with more than one serving thread, nginx by CPU time).</summary>
    public Figure BalanceChart() => Grouped($"Busiest serving thread's share of the requests ({100.0 / Options.Workers:0.#}% is even; nginx: of CPU time)",
        "%", r => r.BusiestShare);

    /// <summary>The longest accept queue read in each model's runs, per workload.</summary>
    public Figure QueueChart() => Grouped("Peak accept queue (either run)", "connections waiting", r => r.PeakAcceptQueue);

    Figure Grouped(string title, string yTitle, Func<SideRun, double?> value)
    {
        var order = Models.Select(m => m.Name).Append(NginxName).ToList();
        var traces = new List<Figure>();
        foreach (var model in order)
        {
            var rows = _runs.Where(r => r.Model == model && value(r) is not null).ToList();
            if (rows.Count == 0) continue;
            traces.Add(Figure.Column(rows.Select(r => r.Workload), rows.Select(r => value(r)!.Value), model));
        }
        if (traces.Count == 0) throw new InvalidOperationException("No runs to chart.");
        return LabCharts.Finish(Figure.Combine(traces), title, "workload", yTitle);
    }

    /// <summary>"15 runs of 5 models (+ nginx) under 3 workloads".</summary>
    public override string ToString() =>
        $"{_runs.Count} runs: {_runs.Select(r => r.Model).Distinct().Count()} servers under {WorkloadNames.Count} workloads" + (NginxNote is null ? "" : $"; {NginxNote}");
}

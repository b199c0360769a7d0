using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Lab.Load;
using Lab.Peers;
using Lab.Topologies;

namespace Lab.Bench;

/// <summary>What <see cref="Benchmark.Run"/> measures and for how long.</summary>
public sealed record BenchOptions
{
    /// <summary>
    /// Rounds of A B per pair (the lab's side, then the peer's; the order flips every round). Defaults to 5: on a
    /// shared machine many short rounds cancel drift better than a few long ones (A and B run closer in time).
    /// </summary>
    public int Rounds { get; init; } = 5;

    /// <summary>How long each side runs per round (whole seconds: wrk's unit). Defaults to 2 s.</summary>
    public TimeSpan Seconds { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A warm-up run of each server before its pair is measured (JIT tiering settles in it), not counted. Defaults to 1 s; zero skips it.</summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Only the topology whose label contains this (case-insensitive), e.g. "RequestDispatch" or "EpollExclusive". Defaults to null: all.</summary>
    public string? Only { get; init; }

    /// <summary>Worker counts to measure each topology at (SingleThreadLoop is always 1). Defaults to 1 and 2.</summary>
    public IReadOnlyList<int> Workers { get; init; } = [1, 2];

    /// <summary>Client connections (wrk -c, the lab's generator's Connections). Defaults to 64.</summary>
    public int Connections { get; init; } = 64;

    /// <summary>Client threads (wrk -t). Defaults to 2.</summary>
    public int ClientThreads { get; init; } = 2;

    /// <summary>Which parts run. Defaults to all of them.</summary>
    public BenchParts Parts { get; init; } = BenchParts.All;

    /// <summary>The CI form: 1 round of 1 s per side, no warm-up.</summary>
    public static BenchOptions Short => new() { Rounds = 1, Seconds = TimeSpan.FromSeconds(1), WarmUp = TimeSpan.Zero };
}

/// <summary>The parts of the benchmark.</summary>
[Flags]
public enum BenchParts
{
    /// <summary>Each topology against nginx at the same worker count, keep-alive and Connection: close, under wrk.</summary>
    Throughput = 1,
    /// <summary>The lab's load generator against wrk, both driving nginx.</summary>
    LoadGenerator = 2,
    /// <summary>p99 of each topology and of nginx at half nginx's maximum rate (open loop, the lab's generator).</summary>
    Latency = 4,
    /// <summary>A topology with and without the 1 ms accept-queue sampler.</summary>
    Sampler = 8,
    /// <summary>Everything.</summary>
    All = 15,
}

/// <summary>
/// One pair: the lab's side (A) and its peer (B) measured in alternation, with each round's ratio A/B, so the
/// machine's drift (other processes, frequency, heat) falls on both sides of a ratio alike.
/// </summary>
public sealed record BenchRow
{
    /// <summary>"throughput", "load generator", "p99 at half rate", "p99 at half own rate" (a model below the throughput target, at half its own peak) or "sampler cost".</summary>
    public required string Part { get; init; }
    /// <summary>What the lab side is: a topology label, "lab load", "sampler on".</summary>
    public required string Lab { get; init; }
    /// <summary>What it is compared with: "nginx", "wrk", "sampler off".</summary>
    public required string Peer { get; init; }
    /// <summary>Server worker count (nginx worker_processes).</summary>
    public required int Workers { get; init; }
    /// <summary>"keep-alive" or "close".</summary>
    public required string Mode { get; init; }
    /// <summary>"req/s" or "p99 ms".</summary>
    public required string Unit { get; init; }
    /// <summary>The lab side's reading each round.</summary>
    public required double[] LabValues { get; init; }
    /// <summary>The peer's reading each round.</summary>
    public required double[] PeerValues { get; init; }
    /// <summary>The goal for the median ratio: at least this when <see cref="HigherIsBetter"/>, else at most.</summary>
    public required double Target { get; init; }
    /// <summary>True for rates, false for latencies.</summary>
    public required bool HigherIsBetter { get; init; }
    /// <summary>Errors either side saw (wrk socket errors and non-2xx; the lab generator's failed requests).</summary>
    public long Errors { get; init; }
    /// <summary>Throughput rows: the server's CPU time per request each round, in µs (lab side).</summary>
    public double[] LabCpuMicros { get; init; } = [];
    /// <summary>Throughput rows: the peer's CPU time per request each round, in µs.</summary>
    public double[] PeerCpuMicros { get; init; } = [];
    /// <summary>What else the reader needs (e.g. the rate a latency row ran at).</summary>
    public string Note { get; init; } = "";

    /// <summary>Each round's ratio lab/peer.</summary>
    public double[] Ratios => LabValues.Zip(PeerValues, (a, b) => b > 0 ? a / b : 0).ToArray();
    /// <summary>The median of the per-round ratios.</summary>
    public double Ratio => Benchmark.Median(Ratios);
    /// <summary>Whether the median ratio meets the target.</summary>
    public bool Met => HigherIsBetter ? Ratio >= Target : Ratio <= Target;

    /// <summary>One progress line with the figures.</summary>
    public override string ToString()
    {
        string F(double[] v) => $"{Benchmark.Format(Benchmark.Median(v), Unit)} [{Benchmark.Format(v.Min(), Unit)}-{Benchmark.Format(v.Max(), Unit)}]";
        var cpu = LabCpuMicros.Length > 0 && PeerCpuMicros.Length > 0 ? $" cpu {Benchmark.Median(LabCpuMicros):0.0}/{Benchmark.Median(PeerCpuMicros):0.0} us/req" : "";
        return $"{Part,-16} {Lab,-38} {Workers}w {Mode,-10} {F(LabValues),-26} {Peer} {F(PeerValues),-26} ratio {Ratio:0.00} [{Ratios.Min():0.00}-{Ratios.Max():0.00}]{cpu} " +
               $"target {(HigherIsBetter ? ">=" : "<=")}{Target:0.00} {(Met ? "met" : "MISSED")}{(Errors > 0 ? $", {Errors} errors" : "")}{(Note.Length > 0 ? " (" + Note + ")" : "")}";
    }
}

/// <summary>Where and when a benchmark ran: the figures mean little without it.</summary>
public sealed record BenchMachine(string Date, string Cpu, int Cores, string Kernel, string Runtime, string Build, string Nginx, string Wrk,
    string LoadAverageBefore, string LoadAverageAfter, int Rounds, double SecondsPerSide, int Connections, int ClientThreads);

/// <summary>A whole benchmark run.</summary>
public sealed record BenchReport(BenchMachine Machine, IReadOnlyList<BenchRow> Rows)
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    /// <summary>The rows and machine as JSON (ratios and verdicts included).</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        machine = Machine,
        rows = Rows.Select(r => new
        {
            r.Part, r.Lab, r.Peer, r.Workers, r.Mode, r.Unit, r.LabValues, r.PeerValues, r.Ratios, r.Ratio, r.Target, r.HigherIsBetter, r.Met, r.Errors, r.Note,
            r.LabCpuMicros, r.PeerCpuMicros,
        }),
    }, Json);

    /// <summary>The results table in Markdown, with the date and machine it was measured on.</summary>
    public string ToMarkdown()
    {
        var m = Machine;
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {m.Date} on {m.Cpu} ({m.Cores} cores), Linux {m.Kernel}, .NET {m.Runtime} ({m.Build} build), {m.Nginx}, {m.Wrk}.");
        sb.AppendLine($"Load average before {m.LoadAverageBefore}, after {m.LoadAverageAfter}. {m.Rounds} round(s) of {m.SecondsPerSide:0.#} s per side, " +
                      $"A and B alternating; {m.Connections} connections, {m.ClientThreads} client threads. Values are medians [min-max]; " +
                      "the ratio is the median of each round's lab/peer ratio.");
        sb.AppendLine();
        sb.AppendLine("| part | lab side | workers | mode | lab | peer | peer value | ratio [min-max] | target | | CPU µs/request lab / peer |");
        sb.AppendLine("|---|---|---:|---|---:|---|---:|---:|---:|---|---:|");
        foreach (var r in Rows)
        {
            string F(double[] v) => $"{Format(Median(v), r.Unit)} [{Format(v.Min(), r.Unit)}-{Format(v.Max(), r.Unit)}]";
            sb.AppendLine($"| {r.Part} | {r.Lab} | {r.Workers} | {r.Mode} | {F(r.LabValues)} | {r.Peer} | {F(r.PeerValues)} | " +
                          $"{r.Ratio:0.00} [{r.Ratios.Min():0.00}-{r.Ratios.Max():0.00}] | {(r.HigherIsBetter ? "≥" : "≤")} {r.Target:0.00} | " +
                          $"{(r.Met ? "met" : "**missed**")}{(r.Errors > 0 ? $", {r.Errors} errors" : "")}{(r.Note.Length > 0 ? "; " + r.Note : "")} | " +
                          (r.LabCpuMicros.Length > 0 && r.PeerCpuMicros.Length > 0 ? $"{Median(r.LabCpuMicros):0.0} / {Median(r.PeerCpuMicros):0.0}" : "") + " |");
        }
        return sb.ToString();
    }

    static string Format(double v, string unit) => Benchmark.Format(v, unit);
    static double Median(double[] v) => Benchmark.Median(v);

}

/// <summary>
/// The lab against the servers and tools people trust, on loopback: each topology against nginx configured to match,
/// the lab's load generator against wrk, p99 at half nginx's peak rate, and the cost of the 1 ms queue sampler.
/// </summary>
public static class Benchmark
{
    /// <summary>Runs the benchmark, reporting each finished pair to <paramref name="progress"/> (one line each).</summary>
    public static BenchReport Run(BenchOptions options, Action<string>? progress = null, CancellationToken ct = default)
    {
        if (options.Rounds is < 1 or > 50) throw new ArgumentOutOfRangeException(nameof(options), options.Rounds, "Rounds must be 1-50.");
        if (options.Seconds < TimeSpan.FromSeconds(1) || options.Seconds > TimeSpan.FromMinutes(2))
            throw new ArgumentOutOfRangeException(nameof(options), options.Seconds, "Seconds per side must be 1-120.");
        if (!Nginx.Installed || !Wrk.Installed)
            throw new Lab.Hosts.LabSetupException("The benchmark needs nginx and wrk.", "Install them: apt-get install -y nginx wrk (bench/run does this).");
        var topologies = TopologyCatalog.All
            .Where(t => options.Only is null || t.Label.Contains(options.Only, StringComparison.OrdinalIgnoreCase)).ToList();
        if (topologies.Count == 0)
            throw new ArgumentException($"No topology matches '{options.Only}'. Labels: {string.Join(", ", TopologyCatalog.All.Select(t => t.Label))}.", nameof(options));

        progress ??= _ => { };
        var before = LoadAverage();
        var rows = new List<BenchRow>();
        void Add(BenchRow r) { rows.Add(r); progress(r.ToString()); }
        var peakByWorkers = new Dictionary<(string, int), double>();
        var labPeakByWorkers = new Dictionary<(string, int), double>();

        if (options.Parts.HasFlag(BenchParts.Throughput))
            foreach (var (label, create) in topologies)
                foreach (var workers in WorkersFor(label, options))
                    foreach (var close in new[] { false, true })
                    {
                        ct.ThrowIfCancellationRequested();
                        var row = Throughput(label, create, workers, close, options, ct);
                        if (!close) (peakByWorkers[(label, workers)], labPeakByWorkers[(label, workers)]) = (Median(row.PeerValues), Median(row.LabValues));
                        Add(row);
                    }

        if (options.Parts.HasFlag(BenchParts.LoadGenerator))
            foreach (var close in new[] { false, true })
            {
                ct.ThrowIfCancellationRequested();
                Add(LoadGeneratorAgainstWrk(close, options, ct));
            }

        if (options.Parts.HasFlag(BenchParts.Latency))
            foreach (var (label, create) in topologies)
            {
                ct.ThrowIfCancellationRequested();
                int workers = WorkersFor(label, options).Max();
                double nginxPeak = peakByWorkers.GetValueOrDefault((label, workers)), labPeak = labPeakByWorkers.GetValueOrDefault((label, workers));
                Add(LatencyAtHalfRate(label, create, workers, nginxPeak, options, ct));
                // A model whose own peak is below 0.8x nginx's runs at over 62% of that peak at half nginx's rate, near
                // enough to it that its p99 there is mostly its queue: measure it also at half its own peak.
                if (labPeak > 0 && labPeak < 0.8 * nginxPeak)
                    Add(LatencyAtHalfRate(label, create, workers, nginxPeak, options, ct, ownPeak: labPeak));
            }

        if (options.Parts.HasFlag(BenchParts.Sampler))
        {
            ct.ThrowIfCancellationRequested();
            var (label, create) = topologies.FirstOrDefault(t => t.Label == "DispatcherWorkers") is { Label: not null } d ? d : topologies[0];
            foreach (var diag in new[] { false, true })
                Add(SamplerCost(label, create, WorkersFor(label, options).Max(), diag, options, ct));
        }

        var machine = new BenchMachine(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), CpuModel(), Environment.ProcessorCount,
            Environment.OSVersion.Version.ToString(), Environment.Version.ToString(), BuildConfiguration(), NginxVersion(), WrkVersion(),
            before, LoadAverage(), options.Rounds, Math.Ceiling(options.Seconds.TotalSeconds), options.Connections, options.ClientThreads);
        return new BenchReport(machine, rows);
    }

    static IEnumerable<int> WorkersFor(string label, BenchOptions o) => label == "SingleThreadLoop" ? [1] : o.Workers;

    /// <summary>The nginx configuration that matches a topology: the same worker count, reuseport and accept_mutex as its model.</summary>
    public static NginxOptions NginxFor(string label, int workers) => new()
    {
        Workers = label == "SingleThreadLoop" ? 1 : workers,
        ReusePort = label == "ReusePortShards",
        AcceptMutex = label.EndsWith("/AcceptMutex", StringComparison.Ordinal),
        Backlog = 511,
    };

    static Topology StartTopology(Func<TopologyOptions, Topology> create, int workers)
    {
        // Request events off: a benchmark measures the server, not the lab's tracing of it.
        var t = create(new TopologyOptions { Workers = workers, Backlog = 511, RequestEvents = false, NoDelay = true });
        t.Start();
        return t;
    }

    static BenchRow Throughput(string label, Func<TopologyOptions, Topology> create, int workers, bool close, BenchOptions o, CancellationToken ct)
    {
        using var nginx = Nginx.Start(NginxFor(label, workers));
        using var lab = StartTopology(create, workers);
        long errors = 0;
        var (labCpu, nginxCpu) = (new List<double>(), new List<double>());
        double Measure(string url, Func<TimeSpan> cpu, List<double> perRequest)
        {
            var before = cpu();
            var r = Wrk.Run(url, o.ClientThreads, o.Connections, o.Seconds, close, ct);
            if (r.Requests > 0) perRequest.Add((cpu() - before).TotalMicroseconds / r.Requests);
            errors += r.Errors;
            return r.RequestsPerSecond;
        }
        // CPU time per request is the figure the machine's load disturbs least: a busy machine lowers both sides'
        // rates, but each request still costs the server about the same CPU. The lab's is this whole process's
        // (its server threads, plus the little this harness does while wrk runs); nginx's is its master's and workers'.
        var (a, b) = Alternate(o, () => Measure(lab.Url, ProcessCpu, labCpu), () => Measure(nginx.Url, () => nginx.CpuTime, nginxCpu),
            () => { Wrk.Run(lab.Url, o.ClientThreads, o.Connections, o.WarmUp, close, ct); Wrk.Run(nginx.Url, o.ClientThreads, o.Connections, o.WarmUp, close, ct); });
        return new BenchRow
        {
            Part = "throughput", Lab = label, Peer = "nginx", Workers = workers, Mode = close ? "close" : "keep-alive", Unit = "req/s",
            LabValues = a, PeerValues = b, Target = close ? 0.7 : 0.8, HigherIsBetter = true, Errors = errors,
            LabCpuMicros = labCpu.ToArray(), PeerCpuMicros = nginxCpu.ToArray(),
        };
    }

    static BenchRow LoadGeneratorAgainstWrk(bool close, BenchOptions o, CancellationToken ct)
    {
        using var nginx = Nginx.Start(new NginxOptions { Workers = 2 });
        long errors = 0;
        double Ours(TimeSpan d)
        {
            var r = LoadGenerator.Run(new LoadOptions
            {
                Target = nginx.Url, Connections = o.Connections, Threads = o.ClientThreads, Duration = d, KeepAlive = !close,
            }, null, ct);
            errors += r.Errors.Total;
            return r.RequestsPerSecond;
        }
        double Theirs(TimeSpan d)
        {
            var r = Wrk.Run(nginx.Url, o.ClientThreads, o.Connections, d, close, ct);
            errors += r.Errors;
            return r.RequestsPerSecond;
        }
        var (a, b) = Alternate(o, () => Ours(o.Seconds), () => Theirs(o.Seconds), () => { Ours(o.WarmUp); Theirs(o.WarmUp); });
        return new BenchRow
        {
            Part = "load generator", Lab = "lab load", Peer = "wrk", Workers = 2, Mode = close ? "close" : "keep-alive", Unit = "req/s",
            LabValues = a, PeerValues = b, Target = 0.8, HigherIsBetter = true, Errors = errors, Note = "both drive nginx with 2 workers",
        };
    }

    static BenchRow LatencyAtHalfRate(string label, Func<TopologyOptions, Topology> create, int workers, double nginxPeak, BenchOptions o, CancellationToken ct,
        double ownPeak = 0)
    {
        using var nginx = Nginx.Start(NginxFor(label, workers));
        using var lab = StartTopology(create, workers);
        // wrk cannot pace requests, so both sides are driven by the lab's open-loop generator at the same rate, and
        // nginx's peak is its keep-alive rate under wrk in this run (or measured now when the throughput part did not run).
        if (nginxPeak <= 0) nginxPeak = Wrk.Run(nginx.Url, o.ClientThreads, o.Connections, o.Seconds, false, ct).RequestsPerSecond;
        double rate = Math.Round((ownPeak > 0 ? ownPeak : nginxPeak) / 2);
        long errors = 0;
        double P99(string url, TimeSpan d)
        {
            var r = LoadGenerator.Run(new LoadOptions { Target = url, Connections = o.Connections, Threads = o.ClientThreads, Duration = d, Rate = rate }, null, ct);
            errors += r.Errors.Total;
            return r.Latency.Percentile(99).TotalMilliseconds;
        }
        var (a, b) = Alternate(o, () => P99(lab.Url, o.Seconds), () => P99(nginx.Url, o.Seconds), () => { P99(lab.Url, o.WarmUp); P99(nginx.Url, o.WarmUp); });
        return new BenchRow
        {
            Part = ownPeak > 0 ? "p99 at half own rate" : "p99 at half rate", Lab = label, Peer = "nginx", Workers = workers, Mode = "keep-alive", Unit = "p99 ms",
            LabValues = a, PeerValues = b, Target = 1.5, HigherIsBetter = false, Errors = errors, Note = $"open loop at {rate:N0} req/s" + (ownPeak > 0 ? $", half the lab side's own peak ({ownPeak:N0}): half nginx's would be {nginxPeak / 2 / ownPeak:P0} of it" : ""),
        };
    }

    /// <summary>
    /// The same topology under wrk with and without a 1 ms accept-queue sampler: <paramref name="sockDiag"/> false is
    /// the sampler <see cref="TopologyRunner.Run"/> uses (TCP_INFO on each listener); true is
    /// <see cref="Lab.Observe.ListenQueues.Sample"/> with the accept queue only (a sock_diag dump of LISTEN sockets;
    /// the SYN queue would walk the whole established hash, ≈1 ms a read).
    /// </summary>
    static BenchRow SamplerCost(string label, Func<TopologyOptions, Topology> create, int workers, bool sockDiag, BenchOptions o, CancellationToken ct)
    {
        using var lab = StartTopology(create, workers);
        long errors = 0, samples = 0;
        double seconds = 0;
        double Measure(bool sampling, TimeSpan d)
        {
            var clock = Stopwatch.StartNew();
            IDisposable? sampler = !sampling ? null
                : sockDiag ? Lab.Observe.ListenQueues.Sample(lab.Port, TimeSpan.FromMilliseconds(1), lab.LocalEndPoint.Address, includeSynQueue: false, maxDuration: d + TimeSpan.FromSeconds(30))
                : new QueueSampler(lab, TimeSpan.FromMilliseconds(1));
            try
            {
                var r = Wrk.Run(lab.Url, o.ClientThreads, o.Connections, d, false, ct);
                errors += r.Errors;
                return r.RequestsPerSecond;
            }
            finally
            {
                if (sampler is not null)
                {
                    sampler.Dispose();
                    seconds += clock.Elapsed.TotalSeconds;
                    samples += sampler switch
                    {
                        QueueSampler q => q.Samples.Count,
                        Lab.Observe.Sampler<Lab.Observe.ListenQueueReading> l => l.Count,
                        _ => 0,
                    };
                }
            }
        }
        var (a, b) = Alternate(o, () => Measure(true, o.Seconds), () => Measure(false, o.Seconds), () => Measure(false, o.WarmUp));
        return new BenchRow
        {
            Part = "sampler cost", Lab = label + (sockDiag ? " + sock_diag sampler" : " + TCP_INFO sampler"), Peer = "no sampler", Workers = workers,
            Mode = "keep-alive", Unit = "req/s", LabValues = a, PeerValues = b, Target = 0.95, HigherIsBetter = true, Errors = errors,
            Note = $"1 ms interval, {(seconds > 0 ? samples / seconds : 0):N0} samples/s achieved",
        };
    }

    /// <summary>A then B, B then A, ... for the rounds: the order flips so neither side always runs first.</summary>
    static (double[] A, double[] B) Alternate(BenchOptions o, Func<double> a, Func<double> b, Action warmUp)
    {
        if (o.WarmUp > TimeSpan.Zero) warmUp();
        var (ra, rb) = (new double[o.Rounds], new double[o.Rounds]);
        for (int i = 0; i < o.Rounds; i++)
        {
            if (i % 2 == 0) { ra[i] = a(); rb[i] = b(); }
            else { rb[i] = b(); ra[i] = a(); }
        }
        return (ra, rb);
    }

    static TimeSpan ProcessCpu()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }

    /// <summary>The median by the lab's one definition (<see cref="Stats.Median"/>, nearest rank); 0 when empty.</summary>
    public static double Median(IReadOnlyList<double> values) => values.Count == 0 ? 0 : Stats.Median(values);

    internal static string Format(double v, string unit) => unit == "req/s"
        ? (v >= 1000 ? (v / 1000).ToString("0.0", CultureInfo.InvariantCulture) + "k" : v.ToString("0", CultureInfo.InvariantCulture))
        : v.ToString("0.00", CultureInfo.InvariantCulture);

    static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown CPU" : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return "unknown CPU"; }
    }

    static string BuildConfiguration() =>
        typeof(Benchmark).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "?";

    static string NginxVersion()
    {
        var r = Lab.Hosts.Command.Run(Nginx.Binary, ["-v"]);
        return (r.StdErr + r.StdOut).Trim().Replace("nginx version: ", "");
    }

    static string WrkVersion()
    {
        var r = Lab.Hosts.Command.Run(Wrk.Binary, ["-v"]);
        var first = (r.StdOut + r.StdErr).Split('\n')[0].Trim();
        return first.Length > 0 ? string.Join(' ', first.Split(' ').Take(2)) : "wrk";
    }
}

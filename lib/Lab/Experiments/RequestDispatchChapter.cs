using Lab.Display;
using Lab.Charts;
using Lab.Load;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>One request-dispatch run at one load: what the clients got and how busy the threads were.</summary>
/// <param name="Work">What every request asked for ("/", "/work?ms=2"...).</param>
/// <param name="Workers">Request workers behind the one dispatcher.</param>
/// <param name="OfferedPerSecond">The open-loop rate the clients offered; null for closed loop (as fast as answers come back).</param>
/// <param name="RequestsPerSecond">Requests answered per second.</param>
/// <param name="DispatcherBusy">The dispatcher's busy time over the run's length (0 to 1): its time outside epoll_wait.</param>
/// <param name="WorkerBusy">The workers' mean busy time over the run's length (0 to 1).</param>
/// <param name="MeanHandoffUs">Mean time from "request parsed" on the dispatcher to "work begins" on a worker, without waiting for a free worker (µs).</param>
/// <param name="Queued">Requests that found every worker busy and waited in the dispatcher's queue.</param>
/// <param name="P99Ms">The clients' 99th percentile latency (ms).</param>
/// <param name="Errors">Failed requests.</param>
/// <param name="DispatcherOnCpu">The dispatcher's time running on a CPU over the run's length, from the kernel's schedstat.</param>
/// <param name="DispatcherWaitingForCpu">The dispatcher's time runnable but waiting in a run queue for a CPU, over the run's length (schedstat).</param>
/// <param name="DispatcherUsPerRequest">The dispatcher's CPU time per answered request (µs): what one dispatch costs.</param>
public sealed record DispatchPoint(string Work, int Workers, double? OfferedPerSecond, double RequestsPerSecond, double DispatcherBusy, double WorkerBusy,
    double MeanHandoffUs, long Queued, double P99Ms, long Errors, double DispatcherOnCpu, double DispatcherWaitingForCpu, double DispatcherUsPerRequest)
{
    /// <summary>The most requests per second one dispatcher thread could answer at this cost per request, if it had a CPU to itself.</summary>
    public double DispatcherCeiling => DispatcherUsPerRequest > 0 ? Math.Round(1e6 / DispatcherUsPerRequest) : double.PositiveInfinity;
}

/// <summary>
/// A thread's scheduler statistics from /proc/self/task/TID/schedstat (Documentation/scheduler/sched-stats.rst):
/// time on a CPU, time runnable but waiting in a run queue, and how many times it was given a CPU.
/// </summary>
/// <param name="OnCpu">Time spent running on a CPU.</param>
/// <param name="RunQueueWait">Time spent runnable, waiting for a CPU.</param>
/// <param name="Timeslices">Times it was put on a CPU.</param>
public readonly record struct SchedStat(TimeSpan OnCpu, TimeSpan RunQueueWait, long Timeslices)
{
    /// <summary>Reads thread <paramref name="tid"/> of this process; null when the thread has ended or the kernel lacks schedstats (CONFIG_SCHED_INFO).</summary>
    public static SchedStat? Read(int tid)
    {
        try
        {
            var f = File.ReadAllText($"/proc/self/task/{tid}/schedstat").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return new SchedStat(TimeSpan.FromTicks(long.Parse(f[0]) / 100), TimeSpan.FromTicks(long.Parse(f[1]) / 100), long.Parse(f[2]));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { return null; }
    }

    /// <summary>What happened between <paramref name="earlier"/> and this reading.</summary>
    public SchedStat Since(SchedStat earlier) => new(OnCpu - earlier.OnCpu, RunQueueWait - earlier.RunQueueWait, Timeslices - earlier.Timeslices);
}

/// <summary>
/// Runs <see cref="RequestDispatch"/> again and again, a fresh server each time, changing one thing: the number of
/// workers (<see cref="Scaling"/>) or the offered load (<see cref="Load"/>). Every point is read from the server's
/// counters and the load generator's results of that run.
/// </summary>
public static class DispatchRuns
{
    /// <summary>
    /// For each request kind in <paramref name="works"/> and each count in <paramref name="workerCounts"/> (1 to 16):
    /// <paramref name="connections"/> closed-loop clients for <paramref name="each"/> (0.3 to 10 s). <paramref name="update"/>
    /// hears the throughput chart after every point.
    /// </summary>
    public static IReadOnlyList<DispatchPoint> Scaling(IReadOnlyList<RequestMix> works, IReadOnlyList<int> workerCounts, int connections, TimeSpan each,
        Action<object>? update = null)
    {
        var live = LiveView.Of(update);
        ArgumentNullException.ThrowIfNull(works);
        ArgumentNullException.ThrowIfNull(workerCounts);
        if (works.Count == 0 || workerCounts.Count == 0) throw new ArgumentException("Give at least one request kind and one worker count.");
        if (workerCounts.Any(n => n is < 1 or > 16)) throw new ArgumentOutOfRangeException(nameof(workerCounts), "Worker counts are 1 to 16.");
        if (works.Count * workerCounts.Count > 40) throw new ArgumentException("At most 40 runs (request kinds × worker counts).", nameof(workerCounts));
        CheckEach(each);
        var points = new List<DispatchPoint>();
        foreach (var work in works)
            foreach (var n in workerCounts)
            {
                points.Add(One(work, n, connections, null, each));
                if (points.Count == works.Count * workerCounts.Count) live?.Final(ThroughputChart(points)); else live?.Frame(ThroughputChart(points));
            }
        return points;
    }

    /// <summary>
    /// <paramref name="workers"/> workers; the clients send <paramref name="work"/> at each rate in <paramref name="rates"/>
    /// (requests/s, open loop; null: closed loop) from <paramref name="connections"/> connections for <paramref name="each"/>.
    /// <paramref name="update"/> hears the busy chart after every point. <paramref name="workerSpin"/> is how long each worker
    /// polls for its next request before it sleeps (<see cref="TopologyOptions.WorkerSpin"/>; default 0).
    /// </summary>
    public static IReadOnlyList<DispatchPoint> Load(RequestMix work, int workers, IReadOnlyList<double?> rates, int connections, TimeSpan each,
        Action<object>? update = null, TimeSpan? workerSpin = null)
    {
        var live = LiveView.Of(update);
        ArgumentNullException.ThrowIfNull(work);
        ArgumentNullException.ThrowIfNull(rates);
        if (rates.Count is < 1 or > 12) throw new ArgumentOutOfRangeException(nameof(rates), rates.Count, "Give 1 to 12 rates.");
        CheckEach(each);
        var points = new List<DispatchPoint>();
        foreach (var rate in rates)
        {
            points.Add(One(work, workers, connections, rate, each, workerSpin ?? TimeSpan.Zero));
            if (points.Count == rates.Count) live?.Final(BusyChart(points)); else live?.Frame(BusyChart(points));
        }
        return points;
    }

    static void CheckEach(TimeSpan each)
    {
        if (each < TimeSpan.FromSeconds(0.3) || each > TimeSpan.FromSeconds(10))
            throw new ArgumentOutOfRangeException(nameof(each), each, "Run each point for 0.3 to 10 s.");
    }

    static DispatchPoint One(RequestMix work, int workers, int connections, double? rate, TimeSpan each, TimeSpan workerSpin = default)
    {
        // Per-request events off: at tens of thousands of requests a second they would cost the dispatcher more than its work.
        using var server = new RequestDispatch(new TopologyOptions { Workers = workers, RequestEvents = false, WorkerSpin = workerSpin });
        server.Start();
        // The dispatcher's thread id is known once it ran; its schedstat is read while it still runs (the file goes with the thread).
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        while (server.Metrics.Workers.First(w => w.Role == WorkerRole.Dispatcher).ThreadId == 0 && DateTime.UtcNow < until) Thread.Sleep(1);
        int tid = server.Metrics.Workers.First(w => w.Role == WorkerRole.Dispatcher).ThreadId;
        var before = SchedStat.Read(tid);
        var run = TopologyRunner.Run(server, new LoadOptions { Connections = connections, Duration = each, Rate = rate, Mix = [work] }); // leaves it running
        var cpu = SchedStat.Read(tid) is { } after && before is { } b ? after.Since(b) : default;
        var metrics = server.Metrics;
        server.Stop(Topology.DefaultStopTimeout);
        var seconds = Math.Max(run.Load.Elapsed.TotalSeconds, 1e-3);
        var disp = metrics.Workers.First(w => w.Role == WorkerRole.Dispatcher);
        var pool = metrics.Workers.Where(w => w.Role == WorkerRole.Worker).ToList();
        var d = metrics.Dispatch!;
        return new DispatchPoint(work.Path, workers, rate, Math.Round(run.Load.RequestsPerSecond), Math.Round(Math.Min(1, disp.BusyTime.TotalSeconds / seconds), 3),
            Math.Round(Math.Min(1, pool.Average(w => w.BusyTime.TotalSeconds) / seconds), 3), Math.Round(d.MeanHandoff.TotalMicroseconds, 1), d.Queued,
            Math.Round(run.Load.Latency.P99.TotalMilliseconds, 2), run.Load.Errors.Total,
            Math.Round(Math.Min(1, cpu.OnCpu.TotalSeconds / seconds), 3), Math.Round(Math.Min(1, cpu.RunQueueWait.TotalSeconds / seconds), 3),
            run.Load.Completed == 0 ? 0 : Math.Round(cpu.OnCpu.TotalMicroseconds / run.Load.Completed, 1));
    }

    /// <summary>Requests per second against the number of workers, one line per request kind.</summary>
    public static Figure ThroughputChart(IReadOnlyList<DispatchPoint> points) => LabCharts.TimeSeries(
        $"RequestDispatch: throughput as workers are added ({Environment.ProcessorCount} cores)", "requests/s",
        points.GroupBy(p => p.Work).Select(g => Series.From(g.Key, g, p => p.Workers, p => p.RequestsPerSecond)).ToArray())
        .WithXAxis("workers");

    /// <summary>Per load step: the dispatcher's busy fraction, its time on a CPU and waiting for one (schedstat), and the workers' mean busy fraction.</summary>
    public static Figure BusyChart(IReadOnlyList<DispatchPoint> points) => LabCharts.GroupedBars(
        "RequestDispatch: the dispatcher as load grows", "fraction of the run (1 = all of it)",
        points.Select(p => $"{(p.OfferedPerSecond is { } r ? $"{r:0}/s offered" : "closed loop")}: {p.RequestsPerSecond:0}/s answered").ToList(),
        ("dispatcher busy (outside epoll_wait)", points.Select(p => p.DispatcherBusy).ToList()),
        ("dispatcher on a CPU", points.Select(p => p.DispatcherOnCpu).ToList()),
        ("dispatcher waiting for a CPU", points.Select(p => p.DispatcherWaitingForCpu).ToList()),
        ("workers busy (mean)", points.Select(p => p.WorkerBusy).ToList()));
}

using Lab.Display;
using System.Net;
using Lab.Charts;
using Lab.Observe;

namespace Lab.Experiments;

/// <summary>
/// Watches one listener's SYN queue and accept queue while an experiment runs: samples them through sock_diag
/// every <c>interval</c> and, when given a display's <c>Update</c>, redraws the chart a few times a second so it
/// fills in live in a Jupyter front end (the book shows the last frame).
/// <code>
/// var view = display("starting…");
/// using var watch = QueueWatch.Start(listener.LocalEndPoint, view.Update);
/// ... connect clients, accept slowly ...
/// watch.Stop();
/// watch.Chart()
/// </code>
/// </summary>
public sealed class QueueWatch : IDisposable
{
    readonly LiveChart<ListenQueueReading> _live;

    QueueWatch(LiveChart<ListenQueueReading> live) => _live = live;

    /// <summary>
    /// Starts watching the listener at <paramref name="listener"/>. <paramref name="interval"/> defaults to 10 ms
    /// (reading the SYN queue walks the kernel's whole connection table, about 1-2 ms here, so 1 ms is too often);
    /// <paramref name="maxDuration"/> bounds the watch (defaults to 60 s). Built on <see cref="LiveChart"/>.
    /// </summary>
    public static QueueWatch Start(IPEndPoint listener, Action<object>? update = null, TimeSpan? interval = null,
        TimeSpan? maxDuration = null, string title = "The listener's two queues")
    {
        var every = interval ?? TimeSpan.FromMilliseconds(10);
        if (every < TimeSpan.FromMilliseconds(1)) throw new ArgumentOutOfRangeException(nameof(interval), every, "Sample at most every 1 ms.");
        var reader = new ListenQueueReader(listener.Port, listener.Address, includeSynQueue: true, track: false);
        try
        {
            var live = LiveChart.Start(reader.Read, s => ChartOf(s, title), update, every, maxDuration ?? TimeSpan.FromSeconds(60), owned: reader);
            return new QueueWatch(live);
        }
        catch { reader.Dispose(); throw; }
    }

    /// <summary>The readings so far.</summary>
    public IReadOnlyList<Sample<ListenQueueReading>> Samples => _live.Samples;

    /// <summary>The largest accept queue seen.</summary>
    public int PeakAcceptQueue => Samples.Select(s => s.Value.AcceptQueue).DefaultIfEmpty().Max();

    /// <summary>The largest SYN queue seen.</summary>
    public int PeakSynQueue => Samples.Select(s => s.Value.SynQueue).DefaultIfEmpty().Max();

    /// <summary>
    /// Waits until the latest reading satisfies <paramref name="condition"/> (e.g. <c>r => r.SynQueue > backlog</c>),
    /// looking every 5 ms, for at most <paramref name="within"/>. True when one did, false when the time ran out.
    /// </summary>
    public bool WaitUntil(Func<ListenQueueReading, bool> condition, TimeSpan within)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var s = Samples;
            if (s.Count > 0 && condition(s[^1].Value)) return true;
            if (clock.Elapsed >= within || !_live.IsRunning) return false;
            Thread.Sleep(5);
        }
    }

    /// <summary>Both queues and the accept queue's limit over time.</summary>
    public Figure Chart() => _live.Chart();

    static Figure ChartOf(IReadOnlyList<Sample<ListenQueueReading>> samples, string title)
    {
        double S(Sample<ListenQueueReading> s) => s.Elapsed.TotalSeconds;
        return LabCharts.TimeSeries(title, "connections",
            Series.From("accept queue (established, not yet accepted)", samples, S, s => s.Value.AcceptQueue),
            Series.From("SYN queue (half-open, SYN-RECV)", samples, S, s => s.Value.SynQueue),
            Series.From("accept queue limit (backlog, capped at somaxconn)", samples, S, s => s.Value.AcceptLimit));
    }

    /// <summary>Stops sampling, draws the final frame, and rethrows what stopped the sampler early, if anything.</summary>
    public void Stop()
    {
        try { _live.Stop(); }
        catch (InvalidOperationException e) { throw new InvalidOperationException("Sampling the queues failed: " + e.InnerException?.Message, e.InnerException); }
    }

    /// <summary>Stops sampling. Safe to call twice.</summary>
    public void Dispose() => _live.Dispose();
}

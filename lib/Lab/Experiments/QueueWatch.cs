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
    readonly Sampler<ListenQueueReading> _sampler;
    readonly LiveView? _update;
    readonly TimeSpan _redrawEvery;
    readonly string _title;
    readonly ManualResetEventSlim _stop = new();
    readonly Thread? _redraw;
    int _disposed;

    QueueWatch(Sampler<ListenQueueReading> sampler, Action<object>? update, TimeSpan redrawEvery, string title)
    {
        _sampler = sampler; _update = LiveView.Of(update); _redrawEvery = redrawEvery; _title = title;
        // Drawing a chart takes milliseconds to tens of milliseconds (and longer on a loaded machine); it runs on a
        // thread of its own so the sampler keeps its pace and the readings stay evenly spaced.
        if (update != null)
        {
            _redraw = new Thread(Redraw) { IsBackground = true, Name = "lab queue-watch redraw" };
            _redraw.Start();
        }
        LabResources.Track(this, "QueueWatch");
    }

    /// <summary>
    /// Starts watching the listener at <paramref name="listener"/>. <paramref name="interval"/> defaults to 10 ms
    /// (reading the SYN queue walks the kernel's whole connection table, about 1-2 ms here, so 1 ms is too often);
    /// <paramref name="maxDuration"/> bounds the watch (defaults to 60 s).
    /// </summary>
    public static QueueWatch Start(IPEndPoint listener, Action<object>? update = null, TimeSpan? interval = null,
        TimeSpan? maxDuration = null, string title = "The listener's two queues")
    {
        var every = interval ?? TimeSpan.FromMilliseconds(10);
        if (every < TimeSpan.FromMilliseconds(1)) throw new ArgumentOutOfRangeException(nameof(interval), every, "Sample at most every 1 ms.");
        var sampler = ListenQueues.Sample(listener.Port, every, listener.Address, includeSynQueue: true, maxDuration ?? TimeSpan.FromSeconds(60));
        return new QueueWatch(sampler, update, TimeSpan.FromMilliseconds(250), title);
    }

    /// <summary>The readings so far.</summary>
    public IReadOnlyList<Sample<ListenQueueReading>> Samples => _sampler.Samples;

    /// <summary>The largest accept queue seen.</summary>
    public int PeakAcceptQueue => Samples.Select(s => s.Value.AcceptQueue).DefaultIfEmpty().Max();

    /// <summary>The largest SYN queue seen.</summary>
    public int PeakSynQueue => Samples.Select(s => s.Value.SynQueue).DefaultIfEmpty().Max();

    /// <summary>Both queues and the accept queue's limit over time.</summary>
    public Figure Chart()
    {
        var samples = Samples;
        double S(Sample<ListenQueueReading> s) => s.Elapsed.TotalSeconds;
        return LabCharts.TimeSeries(_title, "connections",
            Series.From("accept queue (established, not yet accepted)", samples, S, s => s.Value.AcceptQueue),
            Series.From("SYN queue (half-open, SYN-RECV)", samples, S, s => s.Value.SynQueue),
            Series.From("accept queue limit (backlog, capped at somaxconn)", samples, S, s => s.Value.AcceptLimit));
    }

    void Redraw()
    {
        int drawn = 0;
        while (!_stop.Wait(_redrawEvery))
        {
            var count = _sampler.Count;
            if (count == drawn) continue;
            drawn = count;
            try { _update!.Frame(Chart()); }
            catch (Exception) { /* a display that went away (cell re-run) must not kill the watch; the final frame is drawn by Stop */ }
        }
    }

    /// <summary>Stops sampling, draws the final frame, and rethrows what stopped the sampler early, if anything.</summary>
    public void Stop()
    {
        _sampler.Stop();
        _stop.Set();
        _redraw?.Join(TimeSpan.FromSeconds(5));
        _update?.Final(Chart());
        if (_sampler.Error != null) throw new InvalidOperationException("Sampling the queues failed: " + _sampler.Error.Message, _sampler.Error);
    }

    /// <summary>Stops sampling. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Set();
        _sampler.Dispose();
        _redraw?.Join(TimeSpan.FromSeconds(5));
        LabResources.Untrack(this);
    }
}

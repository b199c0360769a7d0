using Lab.Charts;
using Lab.Observe;

namespace Lab.Display;

/// <summary>Starts live charts: sample any reading at an interval and redraw a chart of it in place while it runs.</summary>
public static class LiveChart
{
    /// <summary>
    /// Calls <paramref name="read"/> every <paramref name="every"/> (default 50 ms, at least 1 ms) on a thread of its
    /// own, for at most <paramref name="atMost"/> (default 60 s), and, when given a display's <c>Update</c>, redraws
    /// <paramref name="chart"/> of the samples so far every <paramref name="redrawEvery"/> (default 250 ms) on another
    /// thread, so a slow front end never delays a reading. <see cref="LiveChart{T}.Stop"/> draws the last frame.
    /// <code>
    /// var view = display(HTML("starting…"));
    /// var queue = LiveChart.Start(() => listener.ReadAcceptQueue().Length,
    ///     s => LabCharts.TimeSeries("Accept queue", "connections", Series.From("queued", s, x => x.Elapsed.TotalSeconds, x => x.Value)),
    ///     view.Update, every: TimeSpan.FromMilliseconds(20));
    /// ... the experiment ...
    /// queue.Stop();
    /// </code>
    /// </summary>
    public static LiveChart<T> Start<T>(Func<T> read, Func<IReadOnlyList<Sample<T>>, Figure> chart, Action<object>? update = null,
        TimeSpan? every = null, TimeSpan? atMost = null, TimeSpan? redrawEvery = null, IDisposable? owned = null)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var redraw = redrawEvery ?? TimeSpan.FromMilliseconds(250);
        if (redraw < TimeSpan.FromMilliseconds(50) || redraw > TimeSpan.FromSeconds(10))
            throw new ArgumentOutOfRangeException(nameof(redrawEvery), redraw, "Redraw every 50 ms to 10 s: a front end cannot show frames faster than that.");
        var sampler = Sampler.Start(every ?? TimeSpan.FromMilliseconds(50), read, atMost, owned: owned);
        return new LiveChart<T>(sampler, chart, update, redraw);
    }
}

/// <summary>A running live chart (see <see cref="LiveChart.Start{T}"/>).</summary>
public sealed class LiveChart<T> : IDisposable
{
    readonly Sampler<T> _sampler;
    readonly Func<IReadOnlyList<Sample<T>>, Figure> _chart;
    readonly LiveView? _view;
    readonly TimeSpan _redrawEvery;
    readonly ManualResetEventSlim _stop = new();
    readonly Thread? _redraw;
    int _stopped, _disposed;

    internal LiveChart(Sampler<T> sampler, Func<IReadOnlyList<Sample<T>>, Figure> chart, Action<object>? update, TimeSpan redrawEvery)
    {
        _sampler = sampler; _chart = chart; _view = LiveView.Of(update); _redrawEvery = redrawEvery;
        if (_view != null)
        {
            _redraw = new Thread(Redraw) { IsBackground = true, Name = "lab live-chart redraw" };
            _redraw.Start();
        }
        LabResources.Track(this, "LiveChart");
    }

    /// <summary>The readings so far, each with its time since the start.</summary>
    public IReadOnlyList<Sample<T>> Samples => _sampler.Samples;

    /// <summary>The latest reading (default when there is none yet).</summary>
    public T? Last { get { var s = _sampler.Samples; return s.Count == 0 ? default : s[^1].Value; } }

    /// <summary>True while it samples (until Stop, Dispose, its time bound or a failed read).</summary>
    public bool IsRunning => _sampler.IsRunning;

    /// <summary>The chart of the readings so far.</summary>
    public Figure Chart() => _chart(_sampler.Samples);

    void Redraw()
    {
        int drawn = 0;
        while (!_stop.Wait(_redrawEvery))
        {
            var count = _sampler.Count;
            if (count == drawn) continue;
            drawn = count;
            try { _view!.Frame(Chart()); }
            catch (Exception) { /* a display that went away (the cell ran again) must not end the sampling; Stop draws the last frame */ }
        }
    }

    /// <summary>Stops sampling, draws the last frame, and rethrows what stopped the sampler early, if a read failed.
    /// Safe to call twice (the second call does nothing).</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        _sampler.Stop();
        _stop.Set();
        _redraw?.Join(TimeSpan.FromSeconds(5));
        _view?.Final(Chart());
        if (_sampler.Error != null) throw new InvalidOperationException("A reading failed, so sampling stopped: " + _sampler.Error.Message, _sampler.Error);
    }

    /// <summary>Stops sampling and redrawing without a last frame. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Set();
        _sampler.Dispose();
        _redraw?.Join(TimeSpan.FromSeconds(5));
        LabResources.Untrack(this);
    }
}

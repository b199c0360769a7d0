using System.Diagnostics;
using System.Net;
using System.Text;
using Lab.Interop;
using Lab.Sockets;
using Lab.Http;
using static Lab.Interop.errno;

namespace Lab.Load;

/// <summary>
/// An HTTP/1.1 load generator on the lab's own sockets, built like wrk: a few threads, each with its own epoll and
/// a share of the connections, non-blocking sockets, buffers and requests made before the run, nothing allocated
/// per request. Closed loop (each connection sends its next request when the last is answered) or open loop (a
/// fixed arrival rate, latency measured from when each request was due, as wrk2 does against coordinated omission).
/// </summary>
public static class LoadGenerator
{
    /// <summary>
    /// Runs the load described by <paramref name="options"/> and returns what it measured. Bounded by the options'
    /// duration (at most 10 min) and request count; <paramref name="ct"/> (or disposing the run from a cancelled
    /// notebook cell) stops it early with <see cref="OperationCanceledException"/>. <paramref name="progress"/> hears
    /// about once a second.
    /// </summary>
    public static LoadResult Run(LoadOptions options, IProgress<LoadProgress>? progress = null, CancellationToken ct = default)
        => Run(options, null, progress, ct);

    /// <summary><see cref="Run(LoadOptions, IProgress{LoadProgress}?, CancellationToken)"/> on a thread-pool thread.</summary>
    public static Task<LoadResult> RunAsync(LoadOptions options, IProgress<LoadProgress>? progress = null, CancellationToken ct = default)
        => Task.Run(() => Run(options, progress, ct), ct);

    internal static LoadResult Run(LoadOptions options, string? target, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var r = options.Resolve(target);
        var run = new RunHandle(ct);
        try { return Run(options, r, run, progress, ct); }
        finally { run.Finish(); }
    }

    static LoadResult Run(LoadOptions options, LoadOptions.Resolved r, RunHandle run, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        var requests = new byte[r.Mix.Length][];
        var weights = new double[r.Mix.Length];
        double total = r.Mix.Sum(m => m.Weight), acc = 0;
        for (int i = 0; i < r.Mix.Length; i++)
        {
            requests[i] = Encoding.ASCII.GetBytes($"GET {r.Mix[i].Path} HTTP/1.1\r\nHost: {r.Host}\r\n{(options.KeepAlive ? "" : "Connection: close\r\n")}\r\n");
            acc += r.Mix[i].Weight / total;
            weights[i] = acc;
        }
        weights[^1] = 1.0;

        long freq = Stopwatch.Frequency;
        var workers = new LoadWorker[r.Threads];
        using var go = new ManualResetEventSlim();
        long start = 0;
        var threads = new Thread[r.Threads];
        for (int i = 0; i < r.Threads; i++)
        {
            int conns = options.Connections / r.Threads + (i < options.Connections % r.Threads ? 1 : 0);
            long share = r.Requests == long.MaxValue ? long.MaxValue : r.Requests / r.Threads + (i < r.Requests % r.Threads ? 1 : 0);
            workers[i] = new LoadWorker(i, r.Threads, r.Endpoint, requests, weights, conns, share, options, r.Duration, run.Token);
            var w = workers[i];
            threads[i] = new Thread(() =>
            {
                go.Wait();
                try { w.Run(Volatile.Read(ref start)); }
                catch (Exception e) { w.Crash = e; } // surfaced on the caller's thread below, never an unhandled thread exception
            }) { IsBackground = true, Name = $"lab-load {i}" };
            threads[i].Start();
        }
        Volatile.Write(ref start, Stopwatch.GetTimestamp());
        go.Set();

        // Bounded: the workers stop by themselves at start + duration (at most 10 min); give them the request timeout beyond.
        var limit = r.Duration + options.RequestTimeout + TimeSpan.FromSeconds(10);
        long lastCompleted = 0;
        var lastReport = Stopwatch.StartNew();
        foreach (var t in threads)
        {
            while (!t.Join(TimeSpan.FromMilliseconds(250)))
            {
                if (Stopwatch.GetElapsedTime(start) > limit) { run.Cancel(); if (!t.Join(TimeSpan.FromSeconds(5))) break; }
                if (progress is null || lastReport.Elapsed < TimeSpan.FromSeconds(1)) continue;
                long completed = workers.Sum(w => Volatile.Read(ref w.Completed));
                progress.Report(new LoadProgress(Stopwatch.GetElapsedTime(start), workers.Sum(w => Volatile.Read(ref w.Sent)), completed,
                    workers.Sum(w => w.ErrorTotal), (completed - lastCompleted) / lastReport.Elapsed.TotalSeconds));
                lastCompleted = completed;
                lastReport.Restart();
            }
        }
        ct.ThrowIfCancellationRequested();
        if (workers.FirstOrDefault(w => w.Crash is not null)?.Crash is { } crash)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(crash).Throw();
        if (run.StoppedFromOutside) throw new OperationCanceledException("The load run was stopped (its notebook cell was cancelled).");

        var latency = new LatencyHistogram();
        var service = new LatencyHistogram();
        long end = start;
        foreach (var w in workers) { latency.Merge(w.Latency); service.Merge(w.Service); end = Math.Max(end, w.EndedAt); }
        var byPath = new Dictionary<string, LatencyHistogram>(StringComparer.Ordinal);
        for (int m = 0; m < r.Mix.Length; m++)
        {
            if (!byPath.TryGetValue(r.Mix[m].Path, out var h)) byPath[r.Mix[m].Path] = h = new LatencyHistogram();
            foreach (var w in workers) h.Merge(w.ByMix[m]);
        }
        var elapsed = Stopwatch.GetElapsedTime(start, end);
        int seconds = (int)Math.Min(workers[0].PerSecond.Length, Math.Ceiling(elapsed.TotalSeconds));
        var perSecond = new double[seconds];
        foreach (var w in workers) for (int s = 0; s < seconds; s++) perSecond[s] += w.PerSecond[s];
        long E(int k) => workers.Sum(w => w.Errors[k]);
        return new LoadResult
        {
            Options = options,
            Target = r.Endpoint,
            Elapsed = elapsed,
            Sent = workers.Sum(w => w.Sent),
            Completed = workers.Sum(w => w.Completed),
            ConnectionsOpened = workers.Sum(w => w.Opened),
            Errors = new LoadErrors(E(LoadWorker.Refused), E(LoadWorker.Reset), E(LoadWorker.Timeout), E(LoadWorker.BadResponse), E(LoadWorker.Closed), E(LoadWorker.Other)),
            Unfinished = workers.Sum(w => w.Issued - w.Finished),
            Missed = workers.Sum(w => w.Missed),
            Latency = latency,
            ServiceLatency = options.Rate is null ? latency : service,
            LatencyByPath = byPath,
            Throughput = perSecond,
            FirstError = workers.Select(w => w.FirstError).FirstOrDefault(e => e is not null),
        };
    }

    /// <summary>Registers the run with <see cref="LabResources"/>, so a cancelled notebook cell stops it.</summary>
    sealed class RunHandle : IDisposable
    {
        readonly CancellationTokenSource _cts;
        int _finished;
        public RunHandle(CancellationToken outer)
        {
            _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
            LabResources.Track(this, "LoadGenerator");
        }
        public CancellationToken Token => _cts.Token;
        public bool StoppedFromOutside { get; private set; }
        public void Cancel() { try { _cts.Cancel(); } catch (ObjectDisposedException) { } }
        /// <summary>Called by LabResources when a cell is cancelled: stops the run.</summary>
        public void Dispose()
        {
            if (Volatile.Read(ref _finished) == 0) StoppedFromOutside = true;
            Cancel();
            LabResources.Untrack(this);
        }
        public void Finish()
        {
            Volatile.Write(ref _finished, 1);
            LabResources.Untrack(this);
            _cts.Dispose();
        }
    }
}

/// <summary>One load thread: its epoll, its connections, its counters. Everything here runs on that thread.</summary>
internal sealed class LoadWorker
{
    public const int Refused = 0, Reset = 1, Timeout = 2, BadResponse = 3, Closed = 4, Other = 5;
    const int Free = 0, Connecting = 1, Sending = 2, Receiving = 3, Draining = 4, Idle = 5;
    const int ResponseBuffer = 8192;

    sealed class Slot(int index)
    {
        public readonly int Index = index;
        public Connection? Conn;
        public int State;
        public readonly byte[] Rx = new byte[ResponseBuffer];
        public int RxLen, Request, TxOff;
        public long Intended, SentAt, Deadline;
        public EpollEvents Registered;
    }

    readonly int _index, _threads;
    readonly IPEndPoint _endpoint;
    readonly byte[][] _requests;
    readonly double[] _weights;
    readonly Slot[] _slots;
    readonly Stack<int> _ready = new();
    readonly long _share;
    readonly bool _open, _keepAlive;
    readonly double _intervalTicks;
    readonly long _connectTimeout, _requestTimeout, _durationTicks;
    readonly CancellationToken _ct;
    ulong _rng;
    long _start, _end, _nextDue;

    public long Sent, Completed, Opened, Issued, Finished, Missed, EndedAt;
    public Exception? Crash;
    public readonly long[] Errors = new long[6];
    public readonly LatencyHistogram Latency = new(), Service = new();
    /// <summary>Latency as <see cref="Latency"/>, one histogram per entry of the mix (same index as the requests).</summary>
    public readonly LatencyHistogram[] ByMix;
    public readonly long[] PerSecond;
    public string? FirstError;
    public long ErrorTotal { get { long s = 0; for (int i = 0; i < Errors.Length; i++) s += Volatile.Read(ref Errors[i]); return s; } }

    public LoadWorker(int index, int threads, IPEndPoint endpoint, byte[][] requests, double[] weights, int connections, long share,
        LoadOptions o, TimeSpan duration, CancellationToken ct)
    {
        _index = index; _threads = threads; _endpoint = endpoint; _requests = requests; _weights = weights; _share = share; _ct = ct;
        _slots = new Slot[connections];
        ByMix = new LatencyHistogram[requests.Length];
        for (int i = 0; i < ByMix.Length; i++) ByMix[i] = new LatencyHistogram();
        for (int i = 0; i < connections; i++) _slots[i] = new Slot(i);
        _open = o.Rate is not null;
        _keepAlive = o.KeepAlive;
        if (_open) _intervalTicks = Stopwatch.Frequency * threads / o.Rate!.Value;
        _connectTimeout = (long)(o.ConnectTimeout.TotalSeconds * Stopwatch.Frequency);
        _requestTimeout = (long)(o.RequestTimeout.TotalSeconds * Stopwatch.Frequency);
        _durationTicks = (long)(duration.TotalSeconds * Stopwatch.Frequency);
        PerSecond = new long[(int)Math.Ceiling(duration.TotalSeconds) + 1];
        _rng = (ulong)(0x9E3779B97F4A7C15 * (ulong)(index + 1));
    }

    public void Run(long start)
    {
        _start = start;
        _end = start + _durationTicks;
        using var epoll = Epoll.Create();
        Span<EpollEvent> events = stackalloc EpollEvent[256];
        for (int i = _slots.Length - 1; i >= 0; i--) _ready.Push(i);
        long nextScan = start;
        try
        {
            while (true)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= _end || _ct.IsCancellationRequested) break;
                StartReady(epoll, now);
                if (!_open && Issued == Finished && Issued >= _share) break; // every request of this thread's share is done
                if (_open && _nextDue >= _share && Issued == Finished) break;
                int n = epoll.Wait(events, WaitMs(now));
                for (int i = 0; i < n; i++) OnEvent(epoll, _slots[(int)events[i].Data], events[i].Events);
                now = Stopwatch.GetTimestamp();
                if (now >= nextScan) { ScanTimeouts(now); nextScan = now + Stopwatch.Frequency / 20; }
            }
        }
        finally
        {
            EndedAt = Math.Min(Stopwatch.GetTimestamp(), Math.Max(_end, _start));
            if (_open) Missed = Math.Max(0, Math.Min(DueBy(Math.Min(_end, EndedAt)), _share) - _nextDue);
            foreach (var s in _slots) s.Conn?.Dispose();
        }
    }

    /// <summary>Open loop: how many of this thread's requests were due by <paramref name="t"/> (the first at start).</summary>
    long DueBy(long t) => t < _start ? 0 : (long)((t - _start - _index * _intervalTicks / _threads) / _intervalTicks) + 1;

    int WaitMs(long now)
    {
        if (_ready.Count > 0 && !_open && Issued < _share) return 0;
        long until = _end;
        if (_open && _ready.Count > 0 && _nextDue < _share)
            until = Math.Min(until, _start + (long)(_index * _intervalTicks / _threads + _nextDue * _intervalTicks));
        // Rounded up: epoll_wait counts whole milliseconds, and spinning through the last fraction would take a CPU
        // from the server on a small machine. So an open-loop request can leave up to ~1 ms after it was due; that
        // lateness counts in Latency (measured from when it was due) but not in ServiceLatency.
        long ms = ((until - now) * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency;
        return (int)Math.Clamp(ms, 0, 50); // wake at least every 50 ms for timeouts
    }

    void StartReady(Epoll epoll, long now)
    {
        if (_open)
        {
            long due = Math.Min(DueBy(now), _share);
            while (_nextDue < due && _ready.Count > 0)
            {
                long intended = _start + (long)(_index * _intervalTicks / _threads + _nextDue * _intervalTicks);
                _nextDue++;
                Begin(epoll, _slots[_ready.Pop()], intended, now);
            }
            return;
        }
        while (_ready.Count > 0 && Issued < _share) Begin(epoll, _slots[_ready.Pop()], now, now);
    }

    void Begin(Epoll epoll, Slot s, long intended, long now)
    {
        Issued++;
        s.Intended = intended;
        s.Request = Pick();
        s.TxOff = 0;
        s.RxLen = 0;
        if (s.Conn is null) Connect(epoll, s, now);
        else Send(epoll, s, now);
    }

    int Pick()
    {
        if (_weights.Length == 1) return 0;
        _rng ^= _rng << 13; _rng ^= _rng >> 7; _rng ^= _rng << 17; // xorshift64
        double u = (_rng >> 11) * (1.0 / (1UL << 53));
        for (int i = 0; i < _weights.Length; i++) if (u < _weights[i]) return i;
        return _weights.Length - 1;
    }

    void Connect(Epoll epoll, Slot s, long now)
    {
        Connection c;
        try { c = Client.BeginConnect(_endpoint); }
        catch (SyscallException e) { Fail(s, Kind(e.Errno), e.Message); return; }
        Volatile.Write(ref Opened, Opened + 1);
        if (!_keepAlive) c.NoDelay = true;
        s.Conn = c;
        s.State = Connecting;
        s.Deadline = now + _connectTimeout;
        s.Registered = EpollEvents.In | EpollEvents.Out;
        epoll.Add(c.Handle, s.Registered, (ulong)s.Index);
    }

    void Send(Epoll epoll, Slot s, long now)
    {
        var req = _requests[s.Request];
        if (s.TxOff == 0) { s.SentAt = now; s.Deadline = now + _requestTimeout; Volatile.Write(ref Sent, Sent + 1); }
        s.State = Sending;
        IoResult r;
        try { r = s.Conn!.Write(req.AsSpan(s.TxOff)); }
        catch (SyscallException e) { Fail(s, Kind(e.Errno), e.Message); return; }
        if (r.IsReset) { Fail(s, Reset, null); return; }
        if (r.IsData) s.TxOff += r.Bytes;
        var want = EpollEvents.In;
        if (s.TxOff == req.Length) s.State = Receiving;
        else want |= EpollEvents.Out;
        if (want != s.Registered) { s.Registered = want; epoll.Modify(s.Conn!.Handle, want, (ulong)s.Index); }
    }

    void OnEvent(Epoll epoll, Slot s, EpollEvents ev)
    {
        if (s.Conn is null) return;
        long now = Stopwatch.GetTimestamp();
        switch (s.State)
        {
            case Connecting:
                int err = Sys.GetInt(s.Conn.Handle, sys_socket.SOL_SOCKET, sys_socket.SO_ERROR, "SO_ERROR after connect");
                if (err != 0) { Fail(s, Kind(err), $"connect: {ErrnoNames.Name(err)}"); return; }
                if ((ev & (EpollEvents.Out | EpollEvents.Err | EpollEvents.Hup)) == 0) return;
                Send(epoll, s, now);
                return;
            case Sending:
                if ((ev & EpollEvents.Out) != 0) Send(epoll, s, now);
                if (s.State == Sending || s.Conn is null) return;
                break;
        }
        if ((ev & (EpollEvents.In | EpollEvents.Err | EpollEvents.Hup | EpollEvents.RdHup)) != 0) Receive(epoll, s, now);
    }

    void Receive(Epoll epoll, Slot s, long now)
    {
        IoResult r;
        try { r = s.Conn!.Read(s.Rx.AsSpan(s.RxLen)); }
        catch (SyscallException e) { Fail(s, Kind(e.Errno), e.Message); return; }
        if (r.IsWouldBlock) return;
        if (s.State is Draining or Idle)
        {
            // After a closing response, or on an idle keep-alive connection: FIN or reset just ends it.
            if (!r.IsData) { CloseConn(s); if (s.State == Draining) Done(epoll, s, now); else { s.State = Free; } }
            else s.RxLen = 0;
            return;
        }
        if (r.IsEndOfStream) { Fail(s, Closed, null); return; }
        if (r.IsReset) { Fail(s, Reset, null); return; }
        s.RxLen += r.Bytes;
        int len = TinyHttp.TryParseResponse(s.Rx.AsSpan(0, s.RxLen), out int status, out bool keepAlive);
        if (len == 0)
        {
            if (s.RxLen == s.Rx.Length) Fail(s, BadResponse, $"a response over {ResponseBuffer} bytes");
            return;
        }
        if (len < 0 || status is < 200 or > 299) { Fail(s, BadResponse, len < 0 ? "not an HTTP response" : $"status {status}"); return; }
        long micros = (now - (_open ? s.Intended : s.SentAt)) * 1_000_000 / Stopwatch.Frequency;
        Latency.Record(micros);
        ByMix[s.Request].Record(micros);
        if (_open) Service.Record((now - s.SentAt) * 1_000_000 / Stopwatch.Frequency);
        long second = (now - _start) / Stopwatch.Frequency;
        if ((ulong)second < (ulong)PerSecond.Length) PerSecond[second]++;
        Volatile.Write(ref Completed, Completed + 1);
        Finished++;
        s.RxLen = 0;
        if (_keepAlive && keepAlive)
        {
            s.State = Idle;
            if (!_open && Issued < _share && now < _end) Begin(epoll, s, now, now);
            else _ready.Push(s.Index);
            return;
        }
        // The server closes after "Connection: close": wait for its FIN before closing, so the TIME_WAIT stays on
        // the server's side and a long run does not use up this machine's ephemeral ports.
        s.State = Draining;
        s.Deadline = now + Stopwatch.Frequency;
        Receive(epoll, s, now);
    }

    /// <summary>A closing response's connection is gone: the slot takes the next request.</summary>
    void Done(Epoll epoll, Slot s, long now)
    {
        s.State = Free;
        if (!_open && Issued < _share && now < _end) Begin(epoll, s, now, now);
        else _ready.Push(s.Index);
    }

    void ScanTimeouts(long now)
    {
        foreach (var s in _slots)
        {
            if (s.Conn is null || s.State is Free or Idle || now < s.Deadline) continue;
            if (s.State == Draining) { CloseConn(s); s.State = Free; _ready.Push(s.Index); continue; }
            Fail(s, Timeout, s.State == Connecting ? "connect timed out" : "no whole response in time");
        }
    }

    void Fail(Slot s, int kind, string? message)
    {
        Volatile.Write(ref Errors[kind], Errors[kind] + 1);
        if (message is not null) FirstError ??= message;
        Finished++;
        CloseConn(s);
        s.State = Free;
        _ready.Push(s.Index);
    }

    static void CloseConn(Slot s)
    {
        s.Conn?.Dispose(); // close(2) also takes it out of the epoll set
        s.Conn = null;
        s.RxLen = 0;
        s.Registered = EpollEvents.None;
    }

    static int Kind(int errno) => errno switch
    {
        ECONNREFUSED => Refused,
        ECONNRESET or EPIPE => Reset,
        ETIMEDOUT => Timeout,
        _ => Other,
    };
}

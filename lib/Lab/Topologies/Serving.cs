using System.Buffers;
using Lab.Http;
using Lab.Sockets;
using static Lab.Interop.errno;

namespace Lab.Topologies;

/// <summary>What a connection waits for next.</summary>
internal enum SessionState : byte { WantRead, WantWrite, Busy, Closed }

/// <summary>One accepted connection being served: its read buffer, a response part-written, whether a worker has its request.</summary>
internal sealed class HttpSession(Connection connection, int worker, SessionTable table)
{
    public const int InitialBuffer = 4096, MaxBuffer = 4 * TinyHttp.MaxHeaderBytes;
    public readonly Connection Conn = connection;
    public readonly SessionTable Table = table;
    public int Worker = worker;
    public int Slot = -1;
    public EpollEvents Registered;
    public byte[] Buffer = ArrayPool<byte>.Shared.Rent(InitialBuffer);
    public int Start, End;
    public byte[]? Out;
    public int OutOffset;
    public bool CloseAfterWrite, Busy, Closed, NoDelaySet;
    public long ParsedAt;
    public HttpRequest Request;
}

/// <summary>Connections by slot (the slot is the epoll data), safe to read from any thread; closes what is left on Dispose.</summary>
internal sealed class SessionTable : IDisposable
{
    HttpSession?[] _slots = new HttpSession?[64];
    readonly Stack<int> _free = new();
    int _high;
    bool _disposed;

    public int Add(HttpSession s)
    {
        lock (_free)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int i = _free.Count > 0 ? _free.Pop() : _high++;
            if (i >= _slots.Length) Array.Resize(ref _slots, _slots.Length * 2); // a new array; readers see old or new, same contents
            s.Slot = i;
            Volatile.Write(ref _slots[i], s);
            return i;
        }
    }

    public HttpSession? Get(int slot)
    {
        var a = Volatile.Read(ref _slots);
        return (uint)slot < (uint)a.Length ? Volatile.Read(ref a[slot]) : null;
    }

    public void Remove(HttpSession s)
    {
        lock (_free)
            if (s.Slot >= 0 && ReferenceEquals(_slots[s.Slot], s)) { _slots[s.Slot] = null; _free.Push(s.Slot); }
    }

    public void Dispose()
    {
        lock (_free)
        {
            _disposed = true;
            foreach (var s in _slots) s?.Conn.Dispose(); // buffers go to the GC: a stuck thread might still hold one
            Array.Clear(_slots);
        }
    }
}

/// <summary>
/// The accept loop and the per-connection routine every topology shares, so the model files differ only in who
/// calls them. The accept loop is libuv's uv__server_io: accept until EAGAIN, carry on after ECONNABORTED, and a
/// stated EMFILE policy (<see cref="EmfilePolicy"/>).
/// </summary>
internal static class Serving
{
    /// <summary>Bound on accepts per wake-up, so one burst cannot hold a loop forever (libuv has none; every lab loop is bounded).</summary>
    public const int AcceptBatch = 4096;
    public const AcceptFlags Flags = AcceptFlags.NonBlock | AcceptFlags.CloseOnExec;

    /// <summary>Result of <see cref="AcceptAll"/>: how many, or <see cref="PauseListener"/>.</summary>
    public const int PauseListener = -1;

    /// <summary>
    /// Accepts until the queue is empty, giving each connection to <paramref name="onAccepted"/>. Counts a wake-up
    /// that found nothing (EAGAIN at once) as empty. Returns the number accepted, or <see cref="PauseListener"/>
    /// when EMFILE calls for the listener to be left alone for <see cref="TopologyOptions.EmfilePause"/>.
    /// </summary>
    public static int AcceptAll(Topology t, Listener listener, WorkerCounters c, int worker, Action<Connection> onAccepted)
    {
        int n = 0;
        for (int i = 0; i < AcceptBatch; i++)
        {
            // Fewer descriptors free than the runtime's headroom: the EMFILE policy now, before accept4 says it.
            if (t.Fds.Low(t.LiveConnections)) return OnEmfile(t, listener, worker) ? n : PauseListener;
            AcceptResult r;
            try { r = listener.TryAccept(Flags); }
            catch (ObjectDisposedException) { break; } // closed by Stop or CloseShard
            catch (SyscallException e) when (e.Errno is EMFILE or ENFILE)
            {
                return OnEmfile(t, listener, worker) ? n : PauseListener;
            }
            if (r is AcceptResult.Accepted a) { n++; Accepted(t, a.Connection, c, worker, onAccepted); continue; }
            if (r is AcceptResult.Aborted ab) { t.Event(TopologyEventKind.AcceptAborted, worker, ab.Errno); continue; }
            break; // WouldBlock: the queue is empty
        }
        if (n == 0)
        {
            c.Count(ref c.EmptyWakeUps);
            t.Event(TopologyEventKind.AcceptWouldBlock, worker);
        }
        return n;
    }

    /// <summary>Counts an accepted connection and applies <see cref="TopologyOptions.MaxConnections"/>.</summary>
    public static void Accepted(Topology t, Connection conn, WorkerCounters c, int worker, Action<Connection> onAccepted)
    {
        c.Count(ref c.Accepted);
        t.Event(TopologyEventKind.Accepted, worker, conn.Handle.Number);
        t.Fds.Accepted(conn.Handle.Number, t.LiveConnections);
        if (t.Options.MaxConnections is int max && t.LiveConnections >= max)
        {
            t.Event(TopologyEventKind.ConnectionRejected, worker, t.LiveConnections);
            conn.Dispose();
            return;
        }
        onAccepted(conn);
    }

    /// <summary>EMFILE: the reserve-fd trick (true: handled) or a pause (false).</summary>
    static bool OnEmfile(Topology t, Listener listener, int worker)
    {
        if (t.Options.EmfilePolicy == EmfilePolicy.ReserveFd && t.Reserve.Take())
        {
            int refused = 0;
            for (int i = 0; i < AcceptBatch; i++)
            {
                AcceptResult r;
                try { r = listener.TryAccept(Flags); }
                catch (Exception e) when (e is SyscallException or ObjectDisposedException) { break; }
                if (r is AcceptResult.Accepted a) { a.Connection.Dispose(); refused++; continue; }
                if (r is AcceptResult.Aborted) continue;
                break;
            }
            t.Reserve.Open();
            t.Event(TopologyEventKind.AcceptEmfile, worker, refused);
            return true;
        }
        t.Event(TopologyEventKind.AcceptEmfile, worker, -(long)t.Options.EmfilePause.TotalMilliseconds);
        return false;
    }

    /// <summary>Makes a session for a freshly accepted connection.</summary>
    public static HttpSession NewSession(Topology t, Connection conn, int worker, SessionTable table)
    {
        var s = new HttpSession(conn, worker, table);
        table.Add(s);
        t.ConnectionOpened();
        return s;
    }

    /// <summary>The connection is readable: one recv, then serve every complete request buffered (pipelining) inline.</summary>
    public static SessionState Readable(Topology t, HttpSession s, WorkerCounters c, int worker)
    {
        var st = Receive(t, s, worker);
        return st == SessionState.WantRead ? ServeBuffered(t, s, c, worker) : st;
    }

    /// <summary>
    /// One recv into the session's buffer (compacting or growing it first). WantRead after data or EAGAIN; Closed
    /// after FIN (<see cref="TopologyEventKind.ReaderFin"/>) or a reset; Busy when the buffer is full and must be
    /// drained first (a pipelining client ahead of a dispatched request).
    /// </summary>
    public static SessionState Receive(Topology t, HttpSession s, int worker)
    {
        if (s.End == s.Buffer.Length)
        {
            if (s.Start > 0) { s.Buffer.AsSpan(s.Start, s.End - s.Start).CopyTo(s.Buffer); s.End -= s.Start; s.Start = 0; }
            else if (s.Buffer.Length < HttpSession.MaxBuffer)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(s.Buffer.Length * 2);
                s.Buffer.AsSpan(0, s.End).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(s.Buffer);
                s.Buffer = bigger;
            }
            else return SessionState.Busy;
        }
        var r = s.Conn.Read(s.Buffer.AsSpan(s.End));
        switch (r.Kind)
        {
            case IoKind.Data:
                s.End += r.Bytes;
                t.RequestEvent(TopologyEventKind.Read, worker, r.Bytes);
                return SessionState.WantRead;
            case IoKind.EndOfStream:
                Close(t, s, TopologyEventKind.ReaderFin, worker);
                return SessionState.Closed;
            case IoKind.Reset:
                Close(t, s, TopologyEventKind.Reset, worker);
                return SessionState.Closed;
            default:
                return SessionState.WantRead;
        }
    }

    /// <summary>Parses and serves buffered requests on this thread until input runs out, output blocks or the connection closes.</summary>
    public static SessionState ServeBuffered(Topology t, HttpSession s, WorkerCounters c, int worker)
    {
        while (s.Out is null)
        {
            var st = Next(t, s, worker, out var request);
            if (st != SessionState.Busy) return st;
            t.RequestEvent(TopologyEventKind.RequestStarted, worker, request.Milliseconds);
            if (request.Route == Route.Sleep) c.Count(ref c.Waits); // a sleep is a wait, not a silent wake-up
            TinyHttp.Perform(request);
            c.Count(ref c.Requests);
            t.RequestEvent(TopologyEventKind.RequestServed, worker, worker);
            s.Busy = false;
            st = Send(t, s, TinyHttp.ResponseArray(request), !request.KeepAlive, worker);
            if (st != SessionState.WantRead) return st;
        }
        return SessionState.WantWrite;
    }

    /// <summary>
    /// Takes the next complete request out of the buffer: Busy with <paramref name="request"/> set (and s.Busy), or
    /// WantRead when it is incomplete, or what answering an invalid request with 400 led to.
    /// </summary>
    public static SessionState Next(Topology t, HttpSession s, int worker, out HttpRequest request)
    {
        var status = TinyHttp.TryParse(s.Buffer.AsSpan(s.Start, s.End - s.Start), out request, out int consumed);
        if (status == ParseStatus.Complete)
        {
            s.Start += consumed;
            if (s.Start == s.End) s.Start = s.End = 0;
            s.Busy = true;
            return SessionState.Busy;
        }
        if (status == ParseStatus.Incomplete) return SessionState.WantRead;
        t.BadRequest();
        t.Event(TopologyEventKind.BadRequest, worker, s.Conn.Handle.Number);
        s.Start = s.End = 0;
        return Send(t, s, TinyHttp.BadRequestArray, close: true, worker);
    }

    /// <summary>Writes a whole response, or keeps the rest for EPOLLOUT (WantWrite). Closes after it when <paramref name="close"/>.</summary>
    public static SessionState Send(Topology t, HttpSession s, byte[] response, bool close, int worker)
    {
        // TCP_NODELAY once the connection is to stay open (see TopologyOptions.NoDelay): with Connection: close this
        // takes a setsockopt off every request (DispatcherWorkers under wrk -H "Connection: close", perf stat:
        // 7.25 syscalls per request before, 6.77 after; nginx makes 6.19).
        if (!close && !s.NoDelaySet && t.Options.NoDelay)
        {
            s.NoDelaySet = true;
            try { s.Conn.NoDelay = true; }
            catch (SyscallException) { } // the peer reset the connection already: the write below finds out
        }
        s.Out = response;
        s.OutOffset = 0;
        s.CloseAfterWrite = close;
        return Flush(t, s, worker);
    }

    /// <summary>Continues a part-written response: WantRead once it is all out (or Closed after a closing one), else WantWrite.</summary>
    public static SessionState Flush(Topology t, HttpSession s, int worker)
    {
        var output = s.Out;
        if (output is null) return SessionState.WantRead;
        while (s.OutOffset < output.Length)
        {
            var r = s.Conn.Write(output.AsSpan(s.OutOffset));
            if (r.IsData) { s.OutOffset += r.Bytes; continue; }
            if (r.IsReset) { Close(t, s, TopologyEventKind.Reset, worker); return SessionState.Closed; }
            return SessionState.WantWrite;
        }
        s.Out = null;
        if (!s.CloseAfterWrite) return SessionState.WantRead;
        Close(t, s, TopologyEventKind.Closed, worker);
        return SessionState.Closed;
    }

    /// <summary>Closes a session once: event, count, buffer back to the pool, close(2) (which also removes it from epoll).</summary>
    public static void Close(Topology t, HttpSession s, TopologyEventKind why, int worker)
    {
        if (s.Closed) return;
        s.Closed = true;
        s.Table.Remove(s);
        t.Event(why, worker, s.Conn.Handle.Number);
        t.ConnectionClosed();
        s.Conn.Dispose();
        var b = s.Buffer;
        s.Buffer = [];
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>A spare descriptor for <see cref="EmfilePolicy.ReserveFd"/> (libuv opens "/" the same way).</summary>
internal sealed class ReserveFd : IDisposable
{
    readonly object _gate = new();
    Fd? _fd;
    bool _disposed;

    public void Open()
    {
        lock (_gate)
        {
            if (_disposed || _fd is not null) return;
            int fd = Lab.Interop.fcntl.open("/dev/null", Lab.Interop.fcntl.O_RDONLY | Lab.Interop.fcntl.O_CLOEXEC);
            if (fd >= 0) _fd = new Fd(fd);
        }
    }

    /// <summary>Closes the spare so one accept can succeed; false if there is none (in use, or it could not be reopened).</summary>
    public bool Take()
    {
        lock (_gate)
        {
            if (_fd is null) return false;
            _fd.Dispose();
            _fd = null;
            return true;
        }
    }

    public void Dispose()
    {
        lock (_gate) { _disposed = true; _fd?.Dispose(); _fd = null; }
    }
}

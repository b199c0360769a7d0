using System.Runtime.InteropServices;
using Lab.Interop;
using System.Buffers;
using static Lab.Interop.errno;
using static Lab.Interop.io_uring;
using static Lab.Interop.io_uring_sys;

namespace Lab.Sockets;

/// <summary>
/// One completion from the ring: what was asked (<see cref="UserData"/>), what came of it (<see cref="Result"/>: a
/// new fd for an accept, a byte count for a receive or send, -errno on failure) and the kernel's flags.
/// </summary>
public readonly record struct Completion(ulong UserData, int Result, uint Flags)
{
    /// <summary>IORING_CQE_F_MORE: a multishot request is still armed and will complete again.</summary>
    public bool More => (Flags & IORING_CQE_F_MORE) != 0;
    /// <summary>IORING_CQE_F_BUFFER: the data is in the provided buffer <see cref="BufferId"/>.</summary>
    public bool HasBuffer => (Flags & IORING_CQE_F_BUFFER) != 0;
    /// <summary>Which provided buffer holds the data (when <see cref="HasBuffer"/>).</summary>
    public ushort BufferId => (ushort)(Flags >> IORING_CQE_BUFFER_SHIFT);
    /// <summary>The errno of a failed request (0 when <see cref="Result"/> is not negative).</summary>
    public int Errno => Result < 0 ? -Result : 0;

    public override string ToString() =>
        $"user_data {UserData}: " + (Result < 0 ? ErrnoNames.Name(-Result) : $"res {Result}") + (More ? ", more" : "") + (HasBuffer ? $", buffer {BufferId}" : "");
}

/// <summary>
/// An io_uring instance (io_uring_setup(2)): a submission ring the process writes requests into and a completion ring
/// the kernel writes results into, both shared memory, so one io_uring_enter(2) submits many requests and collects
/// many results. <see cref="Accept"/> with multishot arms one request that completes once per connection: no accept4
/// per connection and no epoll_wait. Requests are queued by the Prepare calls and reach the kernel at
/// <see cref="Submit"/> or <see cref="Wait"/>; <see cref="Enters"/> counts the system calls that took.
/// Not thread-safe: one thread prepares, submits and reaps (as one event-loop thread does with its epoll).
/// </summary>
/// <example>
/// <code>
/// using var ring = IoUring.Create();
/// ring.Accept(listener.Handle, userData: 1);           // one request, every connection
/// ring.Wait(1, TimeSpan.FromSeconds(1));
/// foreach (var c in ring.Reap()) ...                 // c.Result is the new connection's fd
/// </code>
/// </example>
public sealed unsafe class IoUring : IDisposable
{
    readonly Fd _ring;
    readonly byte* _sq, _cq;
    readonly nuint _sqSize, _cqSize, _sqesSize;
    readonly io_uring_sqe* _sqes;
    readonly uint* _sqHead, _sqTail, _sqArray, _cqHead, _cqTail;
    readonly io_uring_cqe* _cqes;
    readonly uint _sqMask, _cqMask;
    readonly HashSet<ulong> _acceptTags = new();   // user_data of accepts: their unreaped fds are closed on Dispose
    readonly Dictionary<ulong, MemoryHandle> _pins = new();
    uint _queuedTail, _flushedTail;
    readonly HashSet<ushort> _groups = new();   // provided-buffer groups registered on this ring
    int _disposed, _closing;

    IoUring(Fd ring, in io_uring_params p)
    {
        _ring = ring;
        SetupFlags = p.flags;
        Entries = p.sq_entries;
        CompletionEntries = p.cq_entries;
        Features = p.features;
        _sqSize = p.sq_off.array + p.sq_entries * sizeof(uint);
        _cqSize = p.cq_off.cqes + p.cq_entries * (uint)sizeof(io_uring_cqe);
        bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
        if (single) _sqSize = _cqSize = Math.Max(_sqSize, _cqSize);
        _sqesSize = p.sq_entries * (uint)sizeof(io_uring_sqe);
        try
        {
            _sq = Map(_sqSize, IORING_OFF_SQ_RING, "the submission ring");
            _cq = single ? _sq : Map(_cqSize, IORING_OFF_CQ_RING, "the completion ring");
            _sqes = (io_uring_sqe*)Map(_sqesSize, IORING_OFF_SQES, "the submission entries");
        }
        catch { Unmap(); _ring.Dispose(); throw; }
        _sqHead = (uint*)(_sq + p.sq_off.head);
        _sqTail = (uint*)(_sq + p.sq_off.tail);
        _sqArray = (uint*)(_sq + p.sq_off.array);
        _sqMask = *(uint*)(_sq + p.sq_off.ring_mask);
        _cqHead = (uint*)(_cq + p.cq_off.head);
        _cqTail = (uint*)(_cq + p.cq_off.tail);
        _cqMask = *(uint*)(_cq + p.cq_off.ring_mask);
        _cqes = (io_uring_cqe*)(_cq + p.cq_off.cqes);
        _queuedTail = _flushedTail = *_sqTail;
        LabResources.Track(this, "IoUring");
    }

    byte* Map(nuint size, long offset, string what)
    {
        using var b = Sys.Borrow(_ring);
        var p = mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, b.Fd, offset);
        if (p == (void*)-1) throw Sys.Fail("mmap", $"io_uring fd {b.Fd}, {what}, {size} bytes");
        return (byte*)p;
    }

    /// <summary>The ring's descriptor.</summary>
    public Fd Handle => _ring;
    /// <summary>Submission entries (requests that can be queued before a <see cref="Submit"/>).</summary>
    public uint Entries { get; }
    /// <summary>Completion entries (results the kernel can hold before they are reaped; more are kept, with IORING_FEAT_NODROP).</summary>
    public uint CompletionEntries { get; }
    /// <summary>The IORING_SETUP_* flags the ring was made with (COOP_TASKRUN unless the kernel is older than 5.19).</summary>
    public uint SetupFlags { get; }
    /// <summary>IORING_FEAT_* bits this kernel reported.</summary>
    public uint Features { get; }
    /// <summary>How many io_uring_enter(2) calls this ring made: the only system calls its requests cost.</summary>
    public long Enters { get; private set; }
    /// <summary>A buffer group id not yet used on this ring (for <see cref="ProvidedBuffers.Register"/>).</summary>
    internal ushort NextGroup()
    {
        lock (_groups)
            for (ushort g = 0; ; g++) if (!_groups.Contains(g)) return g;
    }

    internal void GroupRegistered(ushort group) { lock (_groups) _groups.Add(group); }
    internal void GroupUnregistered(ushort group) { lock (_groups) _groups.Remove(group); }

    /// <summary>Requests queued and not yet submitted.</summary>
    public int Queued => (int)(_queuedTail - _flushedTail);

    /// <summary>
    /// io_uring_setup(2) with <paramref name="entries"/> submission entries (a power of two, 1-32768) and
    /// <paramref name="completionEntries"/> completion entries (default 4 × entries: multishot requests complete many
    /// times each).
    /// </summary>
    public static IoUring Create(uint entries = 256, uint? completionEntries = null)
    {
        if (entries is 0 or > 32768 || !uint.IsPow2(entries))
            throw new ArgumentOutOfRangeException(nameof(entries), entries, "io_uring takes 1 to 32768 submission entries, a power of two (e.g. 256).");
        uint cq = completionEntries ?? entries * 4;
        if (cq < entries || cq > 65536 || !uint.IsPow2(cq))
            throw new ArgumentOutOfRangeException(nameof(completionEntries), cq, $"Completion entries must be a power of two from {entries} (the submission entries) to 65536.");
        // COOP_TASKRUN: a completion the network stack posts from another CPU (a packet's softirq, on loopback the
        // client's own thread) queues task work for this ring's thread without an IPI to interrupt it if it is running:
        // the work runs at its next system call, or wakes it if it sleeps. Without the flag, IoUringAccept under wrk
        // took 0.52 IPIs per Connection: close request (0.06 with it) and answered 0-13 % fewer requests (4 alternating pairs).
        // A kernel older than 5.19 refuses the flag with EINVAL: the ring is then made without it.
        const uint flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        var p = new io_uring_params { flags = flags | IORING_SETUP_COOP_TASKRUN, cq_entries = cq };
        int fd = io_uring_setup(entries, &p);
        if (fd < 0 && Sys.Errno == EINVAL)
        {
            p = new io_uring_params { flags = flags, cq_entries = cq };
            fd = io_uring_setup(entries, &p);
        }
        if (fd < 0) throw SetupFailure(Sys.Errno);
        return new IoUring(new Fd(fd), p);
    }

    /// <summary>Why io_uring_setup failed, in the reader's terms: the sysctl that disables it, or the kernel that lacks it.</summary>
    internal static SyscallException SetupFailure(int err)
    {
        var disabled = DisabledSysctl();
        string hint = err switch
        {
            ENOSYS => "This kernel was built without io_uring (CONFIG_IO_URING=n). The io_uring cells cannot run here.",
            EPERM when disabled is 2 => "kernel.io_uring_disabled is 2: io_uring is off for every process on this machine. `sysctl -w kernel.io_uring_disabled=0` as root turns it on.",
            EPERM when disabled is 1 => "kernel.io_uring_disabled is 1: only processes in the group kernel.io_uring_group, or with CAP_SYS_ADMIN, may create rings. Run as root, or set kernel.io_uring_disabled=0.",
            EPERM => "A seccomp filter (a container runtime's default profile) may refuse io_uring: run the container with a profile that allows io_uring_setup.",
            ENOMEM => "The ring did not fit in the locked-memory limit (ulimit -l): try fewer entries.",
            EINVAL => "This kernel rejected the ring's flags (IORING_SETUP_SUBMIT_ALL needs Linux 5.18).",
            _ => Hints.For("io_uring_setup", err, null),
        };
        return new SyscallException("io_uring_setup", err, "", hint);
    }

    /// <summary>kernel.io_uring_disabled (Linux 6.6+): 0 on, 1 only for a group, 2 off; null on kernels without it.</summary>
    public static int? DisabledSysctl()
    {
        // Read directly: Sockets is below Observe (where Sysctl lives) in the library's layering.
        const string path = "/proc/sys/kernel/io_uring_disabled";
        try { return int.TryParse(File.ReadAllText(path).Trim(), out var v) ? v : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// Null when a ring can be made here and its multishot accept takes a loopback connection and stays armed; else
    /// why not, with the fix. Bounded: one client, at most 2 s.
    /// </summary>
    public static string? WhyUnavailable()
    {
        try
        {
            using var listener = Listener.Open("127.0.0.1:0", 1, new ListenerOptions { NonBlocking = true, Backlog = 1 });
            using var ring = Create(8);
            ring.Accept(listener.Handle, userData: 1);
            ring.Submit();
            using var client = Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(2));
            ring.Wait(1, TimeSpan.FromSeconds(2));
            var got = ring.Reap();
            foreach (var c in got) if (c.Result >= 0) Tmds.Linux.LibC.close(c.Result);
            if (got.Count == 0) return "a multishot accept on loopback completed nothing within 2 s";
            if (got[0].Result < 0)
                return got[0].Errno == EINVAL ? "this kernel has no multishot accept (IORING_ACCEPT_MULTISHOT came in Linux 5.19)"
                                              : $"the ring's accept failed: {ErrnoNames.NameAndText(got[0].Errno)}";
            return got[0].More ? null : "this kernel's io_uring accept is one-shot only (multishot came in Linux 5.19)";
        }
        catch (SyscallException e) { return e.Message; }
    }

    io_uring_sqe* Next(string what)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_queuedTail - Volatile.Read(ref *_sqHead) >= Entries) Submit();
        if (_queuedTail - Volatile.Read(ref *_sqHead) >= Entries)
            throw new InvalidOperationException($"The submission ring is full ({Entries} entries) while preparing {what}: submit, or make the ring with more entries.");
        uint i = _queuedTail & _sqMask;
        var sqe = &_sqes[i];
        *sqe = default;
        _sqArray[i] = i;
        _queuedTail++;
        return sqe;
    }

    static int FdOf(SafeHandle handle, string what)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.IsClosed || handle.IsInvalid) throw new ObjectDisposedException(nameof(handle), $"{what}: the socket is already closed.");
        return (int)handle.DangerousGetHandle().ToInt64();
    }

    /// <summary>
    /// IORING_OP_ACCEPT on <paramref name="listener"/>: with <paramref name="multishot"/> (IORING_ACCEPT_MULTISHOT,
    /// Linux 5.19) one request completes once per connection, each completion's result a new fd (non-blocking,
    /// close-on-exec), until it completes without <see cref="Completion.More"/>. The listener must stay open until
    /// the request is submitted. Accepted fds still in the completion ring when the ring is disposed are closed.
    /// </summary>
    public void Accept(SafeHandle listener, ulong userData, bool multishot = true)
    {
        var sqe = Next("an accept");
        sqe->opcode = IORING_OP_ACCEPT;
        sqe->fd = FdOf(listener, "accept");
        sqe->ioprio = multishot ? IORING_ACCEPT_MULTISHOT : (ushort)0;
        sqe->op_flags = (uint)(sys_socket.SOCK_NONBLOCK | sys_socket.SOCK_CLOEXEC);
        sqe->user_data = userData;
        _acceptTags.Add(userData);
    }

    /// <summary>
    /// IORING_OP_RECV into a buffer the kernel picks from <paramref name="buffers"/> (IOSQE_BUFFER_SELECT): with
    /// <paramref name="multishot"/> (IORING_RECV_MULTISHOT, Linux 6.0) one request completes each time data arrives,
    /// until the peer closes (result 0), an error, or the buffers run out (ENOBUFS): then arm it again.
    /// </summary>
    public void Receive(SafeHandle socket, ProvidedBuffers buffers, ulong userData, bool multishot = true)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var sqe = Next("a receive");
        sqe->opcode = IORING_OP_RECV;
        sqe->fd = FdOf(socket, "recv");
        sqe->flags = IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffers.Group;
        sqe->ioprio = multishot ? IORING_RECV_MULTISHOT : (ushort)0;
        sqe->user_data = userData;
    }

    /// <summary>
    /// IORING_OP_SEND of <paramref name="data"/> (pinned until its completion is reaped): the result is the bytes
    /// sent, which can be fewer than asked when the send buffer is full (send the rest again).
    /// </summary>
    public void Send(SafeHandle socket, ReadOnlyMemory<byte> data, ulong userData)
    {
        if (_pins.ContainsKey(userData)) throw new InvalidOperationException($"A send with user_data {userData} is still in flight: give each send its own user_data.");
        var sqe = Next("a send");
        var pin = data.Pin();
        sqe->opcode = IORING_OP_SEND;
        sqe->fd = FdOf(socket, "send");
        sqe->addr = (ulong)pin.Pointer;
        sqe->len = (uint)data.Length;
        sqe->op_flags = (uint)sys_socket.MSG_NOSIGNAL;
        sqe->user_data = userData;
        _pins[userData] = pin;
    }

    /// <summary>
    /// IORING_OP_POLL_ADD for <paramref name="events"/> (POLLIN = 1) on <paramref name="fd"/>; with
    /// <paramref name="multishot"/> it completes each time the fd becomes ready. An eventfd polled this way is how
    /// another thread wakes a thread waiting in <see cref="Wait"/>.
    /// </summary>
    public void Poll(SafeHandle fd, uint events, ulong userData, bool multishot = true)
    {
        var sqe = Next("a poll");
        sqe->opcode = IORING_OP_POLL_ADD;
        sqe->fd = FdOf(fd, "poll");
        sqe->op_flags = events;
        sqe->len = multishot ? IORING_POLL_ADD_MULTI : 0;
        sqe->user_data = userData;
    }

    /// <summary>IORING_OP_ASYNC_CANCEL of the request(s) with <paramref name="target"/> as user_data (every one, with <paramref name="all"/>).</summary>
    public void Cancel(ulong target, ulong userData, bool all = true)
    {
        var sqe = Next("a cancel");
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->addr = target;
        sqe->op_flags = all ? IORING_ASYNC_CANCEL_ALL : 0;
        sqe->user_data = userData;
    }

    /// <summary>Hands the queued requests to the kernel (one io_uring_enter) without waiting; returns how many it took.</summary>
    public int Submit() => Enter(0, null);

    /// <summary>
    /// Submits what is queued and waits until at least <paramref name="completions"/> results are in the completion
    /// ring or <paramref name="timeout"/> passes (IORING_ENTER_EXT_ARG). One io_uring_enter. Returns the results ready.
    /// </summary>
    public int Wait(int completions, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(completions);
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "Give a timeout of 0 or more, or Timeout.InfiniteTimeSpan.");
        if (Ready >= completions) { if (Queued > 0) Submit(); return Ready; }
        // io_uring_enter can return before min_complete results are in (after running task work, or a signal): wait
        // again with the time left until there are enough or the time is up.
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds);
        do
        {
            if (deadline == long.MaxValue) { Enter((uint)completions, null); continue; }
            long leftMs = Math.Max(0, deadline - Environment.TickCount64);
            var ts = new __kernel_timespec { tv_sec = leftMs / 1000, tv_nsec = leftMs % 1000 * 1_000_000 };
            Enter((uint)completions, &ts);
        }
        while (Ready < completions && Environment.TickCount64 < deadline);
        return Ready;
    }

    /// <summary>Results in the completion ring, not yet reaped.</summary>
    public int Ready => (int)(Volatile.Read(ref *_cqTail) - *_cqHead);

    int Enter(uint minComplete, __kernel_timespec* ts)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        uint toSubmit = _queuedTail - _flushedTail;
        Volatile.Write(ref *_sqTail, _queuedTail);
        uint flags = minComplete > 0 ? IORING_ENTER_GETEVENTS : 0;
        var arg = new io_uring_getevents_arg { ts = (ulong)ts };
        if (ts is not null) flags |= IORING_ENTER_EXT_ARG;
        using var b = Sys.Borrow(_ring);
        while (true)
        {
            Enters++;
            int r = io_uring_enter(b.Fd, toSubmit, minComplete, flags, ts is null ? null : &arg, ts is null ? 0 : (nuint)sizeof(io_uring_getevents_arg));
            if (r >= 0) { _flushedTail += (uint)r; toSubmit -= (uint)r; if (toSubmit == 0 || minComplete == 0) return r; continue; }
            int err = Sys.Errno;
            if (err == EINTR) { if (ts is not null) return -1; continue; }  // Wait recomputes the time left
            if (err == ETIME) return -1;                                    // the wait timed out
            if (err is EAGAIN or EBUSY && minComplete == 0) return 0;      // no room for results now: reap first
            throw Sys.Fail("io_uring_enter", $"io_uring fd {b.Fd}, {toSubmit} to submit, wait for {minComplete}");
        }
    }

    /// <summary>Takes the results out of the completion ring, oldest first (no system call).</summary>
    public IReadOnlyList<Completion> Reap()
    {
        var list = new List<Completion>(Ready);
        Span<Completion> chunk = stackalloc Completion[64];
        int n;
        while ((n = Reap(chunk)) > 0) for (int i = 0; i < n; i++) list.Add(chunk[i]);
        return list;
    }

    /// <summary>Copies up to <paramref name="into"/>.Length results out of the completion ring; allocation-free.</summary>
    public int Reap(Span<Completion> into)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        uint head = *_cqHead, tail = Volatile.Read(ref *_cqTail);
        int n = 0;
        for (; head != tail && n < into.Length; head++, n++)
        {
            var c = _cqes[head & _cqMask];
            into[n] = new Completion(c.user_data, c.res, c.flags);
            if ((c.flags & IORING_CQE_F_MORE) == 0 && _pins.Remove(c.user_data, out var pin)) pin.Dispose();
        }
        Volatile.Write(ref *_cqHead, head);
        return n;
    }

    /// <summary>
    /// Cancels every request still armed, waits (at most 1 s) for the cancellations, closes the fds of accepts that
    /// completed but were never reaped, and closes the ring. Safe to call twice; call it from the thread that used
    /// the ring, or after that thread stopped.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        try
        {
            const ulong CancelTag = ulong.MaxValue - 1;
            // IORING_ASYNC_CANCEL_ANY (1 << 2): every request on the ring, whatever its user_data (Linux 6.0).
            var sqe = Next("the final cancel");
            sqe->opcode = IORING_OP_ASYNC_CANCEL;
            sqe->fd = -1;
            sqe->op_flags = IORING_ASYNC_CANCEL_ALL | (1u << 2);
            sqe->user_data = CancelTag;
            long deadline = Environment.TickCount64 + 1000;
            bool cancelled = false;
            Span<Completion> chunk = stackalloc Completion[64];
            while (!cancelled && Environment.TickCount64 < deadline)
            {
                Wait(1, TimeSpan.FromMilliseconds(100));
                int n;
                while ((n = Reap(chunk)) > 0)
                    for (int i = 0; i < n; i++)
                    {
                        var c = chunk[i];
                        if (c.UserData == CancelTag) cancelled = true;
                        else if (c.Result >= 0 && _acceptTags.Contains(c.UserData)) Tmds.Linux.LibC.close(c.Result);
                    }
            }
        }
        catch (Exception e) when (e is SyscallException or InvalidOperationException) { }
        finally
        {
            _disposed = 1;
            foreach (var pin in _pins.Values) pin.Dispose();
            _pins.Clear();
            Unmap();
            _ring.Dispose();
            LabResources.Untrack(this);
        }
    }

    void Unmap()
    {
        if (_sqes is not null) munmap(_sqes, _sqesSize);
        if (_cq is not null && _cq != _sq) munmap(_cq, _cqSize);
        if (_sq is not null) munmap(_sq, _sqSize);
    }

    public override string ToString() => _disposed != 0 ? "io_uring (closed)" : $"io_uring fd {_ring.Number}: {Entries} entries, {Queued} queued, {Ready} ready, {Enters} io_uring_enter calls";
}

/// <summary>
/// A provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19): <see cref="Count"/> buffers of <see cref="Size"/>
/// bytes that the kernel picks from for a receive with buffer select, so no buffer is tied to a connection that has
/// nothing to read. A completion names the buffer it filled; <see cref="Recycle"/> gives it back.
/// </summary>
public sealed unsafe class ProvidedBuffers : IDisposable
{
    readonly IoUring _ring;
    readonly byte* _memory;
    readonly io_uring_buf* _entries;
    readonly nuint _entriesSize;
    ushort _tail;
    int _disposed;

    ProvidedBuffers(IoUring ring, ushort group, int count, int size, byte* memory, io_uring_buf* entries, nuint entriesSize)
    {
        _ring = ring; Group = group; Count = count; Size = size; _memory = memory; _entries = entries; _entriesSize = entriesSize;
        for (int i = 0; i < count; i++) Recycle((ushort)i);
        LabResources.Track(this, "ProvidedBuffers");
    }

    /// <summary>The buffer group id receives name (sqe->buf_group).</summary>
    public ushort Group { get; }
    /// <summary>How many buffers.</summary>
    public int Count { get; }
    /// <summary>Bytes in each buffer.</summary>
    public int Size { get; }

    /// <summary>
    /// Registers <paramref name="count"/> buffers (a power of two, 1-32768) of <paramref name="size"/> bytes with
    /// <paramref name="ring"/>, as group <paramref name="group"/> (default: one this ring has not used, so a cell
    /// re-run beside the previous run's buffers does not collide).
    /// </summary>
    public static ProvidedBuffers Register(IoUring ring, ushort? group = null, int count = 64, int size = 4096)
    {
        ArgumentNullException.ThrowIfNull(ring);
        if (count is < 1 or > 32768 || !int.IsPow2(count)) throw new ArgumentOutOfRangeException(nameof(count), count, "A buffer ring holds 1 to 32768 buffers, a power of two (e.g. 64).");
        if (size is < 1 or > 1 << 20) throw new ArgumentOutOfRangeException(nameof(size), size, "Give each buffer 1 byte to 1 MiB (e.g. 4096).");
        nuint entriesSize = (nuint)(count * sizeof(io_uring_buf));
        // The ring must be page-aligned: anonymous mmap gives that.
        var entries = (io_uring_buf*)mmap(null, entriesSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (entries == (void*)-1) throw Sys.Fail("mmap", $"a buffer ring of {count} entries");
        var memory = (byte*)NativeMemory.AlignedAlloc((nuint)count * (nuint)size, 64);
        ushort id = group ?? ring.NextGroup();
        var reg = new io_uring_buf_reg { ring_addr = (ulong)entries, ring_entries = (uint)count, bgid = id };
        using (var b = Sys.Borrow(ring.Handle))
        {
            if (io_uring_register(b.Fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0)
            {
                int err = Sys.Errno;
                munmap(entries, entriesSize);
                NativeMemory.AlignedFree(memory);
                throw new SyscallException("io_uring_register", err, $"IORING_REGISTER_PBUF_RING, group {id}",
                    err == EEXIST ? $"Group {id} is already registered on this ring: pick another group id, or leave it out to get an unused one." :
                    err == EINVAL ? "This kernel has no provided-buffer rings (Linux 5.19+)." : null);
            }
        }
        ring.GroupRegistered(id);
        return new ProvidedBuffers(ring, id, count, size, memory, entries, entriesSize);
    }

    /// <summary>The first <paramref name="length"/> bytes of buffer <paramref name="id"/> (what a completion filled).</summary>
    public ReadOnlySpan<byte> Read(ushort id, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (id >= Count) throw new ArgumentOutOfRangeException(nameof(id), id, $"There are {Count} buffers.");
        if (length < 0 || length > Size) throw new ArgumentOutOfRangeException(nameof(length), length, $"A buffer holds {Size} bytes.");
        return new ReadOnlySpan<byte>(_memory + (nuint)id * (nuint)Size, length);
    }

    /// <summary>Gives buffer <paramref name="id"/> back to the kernel (after its data was read).</summary>
    public void Recycle(ushort id)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var e = &_entries[_tail & (Count - 1)];
        e->addr = (ulong)(_memory + (nuint)id * (nuint)Size);
        e->len = (uint)Size;
        e->bid = id;
        _tail++;
        // The tail is the first entry's resv field (struct io_uring_buf_ring); the kernel reads it with acquire.
        Volatile.Write(ref ((io_uring_buf*)_entries)->resv, _tail);
    }

    /// <summary>Unregisters the group and frees the buffers (dispose before the ring, or with it). Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (!_ring.Handle.IsClosed)
        {
            var reg = new io_uring_buf_reg { bgid = Group };
            using var b = Sys.Borrow(_ring.Handle);
            io_uring_register(b.Fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
        }
        _ring.GroupUnregistered(Group);
        munmap(_entries, _entriesSize);
        NativeMemory.AlignedFree(_memory);
        LabResources.Untrack(this);
    }
}

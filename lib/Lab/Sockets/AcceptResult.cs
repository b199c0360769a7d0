namespace Lab.Sockets;

/// <summary>Flags accept4(2) gives the new socket.</summary>
[Flags]
public enum AcceptFlags
{
    /// <summary>Neither flag: a blocking socket that survives exec.</summary>
    None = 0,
    /// <summary>SOCK_NONBLOCK: the accepted socket is non-blocking.</summary>
    NonBlock = 0x800,
    /// <summary>SOCK_CLOEXEC: the accepted socket is closed across exec (child processes do not inherit it).</summary>
    CloseOnExec = 0x80000,
}

/// <summary>
/// What one accept4(2) gave: a connection, or an expected outcome as a value. Disposing it closes the connection, if
/// there is one (<c>Keep.One("second", listener.TryAccept())</c> in a cell an instructor re-runs).
/// </summary>
public abstract record AcceptResult : IDisposable
{
    AcceptResult() { }

    /// <summary>A connection was taken from the accept queue.</summary>
    public sealed record Accepted(Connection Connection) : AcceptResult;

    /// <summary>EAGAIN: the accept queue was empty (non-blocking accept). Compare with <c>is AcceptResult.WouldBlock</c>.</summary>
    public sealed record WouldBlock : AcceptResult
    {
        WouldBlock() { }
        /// <summary>The one instance.</summary>
        public static WouldBlock Instance { get; } = new();
        /// <summary>The errno accept4 returned: EAGAIN (on Linux the same number as EWOULDBLOCK).</summary>
        public int Errno => Lab.Interop.errno.EAGAIN;
        /// <summary>The errno's name, as errno(3) and strace print it.</summary>
        public string ErrnoName => "EAGAIN";
        /// <summary>What the call returned, as strace would show it.</summary>
        public override string ToString() => $"WouldBlock: accept4() = -1 {ErrnoName} ({Errno}, the accept queue is empty)";
    }

    /// <summary>A blocking accept's timeout ran out with the queue still empty.</summary>
    public sealed record TimedOut : AcceptResult
    {
        TimedOut() { }
        /// <summary>The one instance.</summary>
        public static TimedOut Instance { get; } = new();
    }

    /// <summary>
    /// ECONNABORTED (or one of the pending network errors accept(2) says to treat like it): the connection at the
    /// head of the queue went away before it was accepted. Carry on accepting, as libuv does.
    /// </summary>
    public sealed record Aborted : AcceptResult
    {
        Aborted(int errno) { Errno = errno; }
        /// <summary>The errno accept4 returned (usually ECONNABORTED).</summary>
        public int Errno { get; }
        /// <summary>The ECONNABORTED instance.</summary>
        public static Aborted Instance { get; } = new(Lab.Interop.errno.ECONNABORTED);
        internal static Aborted For(int errno) => errno == Lab.Interop.errno.ECONNABORTED ? Instance : new(errno);
    }

    /// <summary>The connection, or null for the other outcomes.</summary>
    public Connection? ConnectionOrNull => (this as Accepted)?.Connection;

    /// <summary>Closes the accepted connection (nothing for the other outcomes). Safe to call twice.</summary>
    public void Dispose() => ConnectionOrNull?.Dispose();
}

/// <summary>
/// The accept queue of a listening socket as TCP_INFO reports it: <see cref="Length"/> established connections
/// waiting for accept (tcpi_unacked = sk_ack_backlog) against <see cref="Limit"/> (tcpi_sacked =
/// sk_max_ack_backlog, the backlog after the somaxconn clamp). The same numbers ss -ltn prints as Recv-Q / Send-Q.
/// </summary>
public sealed record AcceptQueueReading(int Length, int Limit)
{
    /// <summary>True when the kernel will drop the next completed handshake (Length &gt; Limit).</summary>
    public bool Full => Length > Limit;
}

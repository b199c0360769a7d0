namespace Lab.Sockets;

/// <summary>What one read or write did.</summary>
public enum IoKind
{
    /// <summary>Bytes moved (<see cref="IoResult.Bytes"/> of them).</summary>
    Data,
    /// <summary>read returned 0: the peer sent FIN (shut down its writing side or closed).</summary>
    EndOfStream,
    /// <summary>EAGAIN: nothing to read / no room to write on a non-blocking socket, or a receive/send timeout ran out.</summary>
    WouldBlock,
    /// <summary>ECONNRESET or EPIPE: the peer reset the connection, or this side can no longer write.</summary>
    Reset,
}

/// <summary>The outcome of <see cref="Connection.Read"/> / <see cref="Connection.Write"/>: expected outcomes are values.</summary>
public readonly record struct IoResult(IoKind Kind, int Bytes, int Errno = 0)
{
    public static IoResult Data(int bytes) => new(IoKind.Data, bytes);
    public static IoResult EndOfStream(int bytesBefore = 0) => new(IoKind.EndOfStream, bytesBefore);
    public static readonly IoResult WouldBlock = new(IoKind.WouldBlock, 0, Lab.Interop.errno.EAGAIN);
    public static IoResult Reset(int errno, int bytesBefore = 0) => new(IoKind.Reset, bytesBefore, errno);

    public bool IsData => Kind == IoKind.Data;
    public bool IsEndOfStream => Kind == IoKind.EndOfStream;
    public bool IsWouldBlock => Kind == IoKind.WouldBlock;
    public bool IsReset => Kind == IoKind.Reset;

    public override string ToString() => Kind switch
    {
        IoKind.Data => $"Data({Bytes} bytes)",
        IoKind.Reset => $"Reset ({ErrnoNames.Name(Errno)}{(Bytes > 0 ? $", after {Bytes} bytes" : "")})",
        IoKind.EndOfStream => Bytes > 0 ? $"EndOfStream (after {Bytes} bytes)" : "EndOfStream",
        _ => Kind.ToString(),
    };
}

/// <summary>Which direction shutdown(2) closes.</summary>
public enum ShutdownHow
{
    /// <summary>SHUT_RD: stop reading (sends nothing; later data from the peer is dropped or reset).</summary>
    Read = 0,
    /// <summary>SHUT_WR: send FIN after queued data; the peer's reads then see end of stream.</summary>
    Write = 1,
    /// <summary>SHUT_RDWR: both.</summary>
    Both = 2,
}

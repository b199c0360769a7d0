namespace Lab.Observe;

/// <summary>
/// A reading the lab could not take: names what was being read, the errno when there is one, and what to do.
/// Expected outcomes (an empty table, a port nobody listens on) are values, never this exception.
/// </summary>
public class ObserveException : Exception
{
    /// <summary>The errno the kernel returned (0 when the failure is not an errno).</summary>
    public int Errno { get; }

    /// <summary>The errno's symbolic name (<c>EPERM</c>), or null.</summary>
    public string? ErrnoName => Errno == 0 ? null : Lab.Sockets.ErrnoNames.Name(Errno);

    public ObserveException(string message, int errno = 0, Exception? inner = null) : base(message, inner) => Errno = errno;
}

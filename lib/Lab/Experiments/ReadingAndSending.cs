namespace Lab.Experiments;

/// <summary>One reading of both ends of a connection while data flows from writer (client) to reader (server): what chapter 05's
/// fill experiment samples.</summary>
/// <param name="RecvQ">The reader's unread bytes (SIOCINQ, ss's Recv-Q).</param>
/// <param name="ReaderWindow">The window the reader advertises (tcpi_rcv_wnd, bytes).</param>
/// <param name="SendQ">The writer's unacknowledged bytes, sent or not (SIOCOUTQ, ss's Send-Q).</param>
/// <param name="WriterSeesWindow">The reader's window as the writer last heard it (tcpi_snd_wnd, bytes).</param>
/// <param name="NotSent">The writer's bytes not yet sent at all (tcpi_notsent_bytes).</param>
/// <param name="Written">Bytes the writing application has handed to write() so far.</param>
/// <param name="Read">Bytes the reading application has read so far.</param>
public readonly record struct FlowReading(long RecvQ, long ReaderWindow, long SendQ, long WriterSeesWindow, long NotSent, long Written, long Read);

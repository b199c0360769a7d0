using System.CommandLine;

namespace Lab.Cli.Commands;

/// <summary>The <c>--timeout</c> option that run, book and jupyter kernel share: seconds a cell may run.</summary>
static class CellTimeout
{
    public static Option<double?> Option(string defaults = "Defaults to 120.") =>
        new("--timeout") { Description = "Seconds a cell may run before it is stopped (what it started is disposed). " + defaults };

    /// <summary>The option's value as a time span; null (the engine's default) when not given or not positive.</summary>
    public static TimeSpan? Of(double? seconds) => seconds is > 0 ? TimeSpan.FromSeconds(seconds.Value) : null;
}

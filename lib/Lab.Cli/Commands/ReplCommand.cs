using System.CommandLine;
using Lab.Cli.Repl;

namespace Lab.Cli.Commands;

/// <summary><c>lab repl</c>: a C# prompt with the library loaded.</summary>
static class ReplCommand
{
    public static Command Create()
    {
        var command = new Command("repl", "An interactive C# prompt with the lab's library loaded. Ctrl+C stops the running cell; Ctrl+D or #exit quits.");
        command.SetAction((_, _) => new ReplHost().RunAsync());
        return command;
    }
}

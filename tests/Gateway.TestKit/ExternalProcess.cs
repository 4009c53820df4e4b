using System.Diagnostics;
using System.Text;

namespace Gateway.TestKit;

/// <summary>A child process (broker, client tool) started by a test and stopped by PID.</summary>
public sealed class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(string Text, TaskCompletionSource Signal)> _waiters = [];

    private ExternalProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public int ExitCode => _process.ExitCode;

    public Task Exited => _exited.Task;

    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments, string? workingDirectory = null, IDictionary<string, string>? environment = null)
    {
        RequireTool(fileName);
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var external = new ExternalProcess(process);
        process.OutputDataReceived += (_, e) => external.Append(e.Data);
        process.ErrorDataReceived += (_, e) => external.Append(e.Data);
        process.Exited += (_, _) => external._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return external;
    }

    /// <summary>Fails with an install hint when a tool the test needs is missing.</summary>
    public static void RequireTool(string fileName)
    {
        if (Path.IsPathRooted(fileName) ? File.Exists(fileName) : FindOnPath(fileName) is not null)
        {
            return;
        }

        throw new InvalidOperationException(
            $"'{fileName}' is not installed. The test command installs it (see README: ./test.sh), or run: " +
            "apt-get install -y mosquitto mosquitto-clients python3-paho-mqtt");
    }

    /// <summary>Completes when a line containing <paramref name="text"/> has been printed.</summary>
    public Task WaitForOutputAsync(string text, TimeSpan? timeout = null)
    {
        lock (_output)
        {
            if (_output.ToString().Contains(text, StringComparison.Ordinal))
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((text, signal));
            return signal.Task.WithTimeout($"'{text}' from {_process.StartInfo.FileName}; output so far:\n{_output}", timeout);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        await _exited.Task.WithTimeout($"{_process.StartInfo.FileName} to exit; output:\n{Output}", timeout);
        await _process.WaitForExitAsync();
        return _process.ExitCode;
    }

    /// <summary>Sends a signal by PID (SIGINT = 2, SIGTERM = 15, SIGKILL = 9).</summary>
    public void Signal(int signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static string? FindOnPath(string fileName) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, fileName))
            .FirstOrDefault(File.Exists);

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (line.Contains(_waiters[i].Text, StringComparison.Ordinal) || _output.ToString().Contains(_waiters[i].Text, StringComparison.Ordinal))
                {
                    _waiters[i].Signal.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}

"""One `ok <check>` / `FAIL <check>: why` line per check, for the interop shell scripts to
count (common.sh's count_checks); shared by the interop clients."""


class Checks:
    def __init__(self):
        self.failed = 0

    def report(self, name, ok, why=""):
        if ok:
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {why}", flush=True)

    def explain(self, error):
        """Why a check that raised `error` failed (override to say it in the peer's words)."""
        return f"{type(error).__name__}: {error}"

    async def run(self, name, check):
        """Runs `check()`, which returns None when it passes or a reason when it does not; an
        exception (a transport error, an error reply, a parse error) counts as a failure."""
        try:
            why = await check()
        except Exception as e:
            why = self.explain(e)
        self.report(name, why is None, why or "")
        return why is None

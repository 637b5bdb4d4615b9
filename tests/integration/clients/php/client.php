<?php
// The client matrix's steps (../README.md) with PHP's mysqli or PDO (MX_DRIVER), both on
// mysqlnd. Prints one JSON line per step.

const EMOJI = '😀 ok 🎉 ünï';
const PARAM_TEXT = "it's \"q\" \\ ünï 😀";
const ITEMS_FROM = 'SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3';
const SENTENCE = 'I love this, thank you!';

/** A step's detail with its own judgement (the error step, the emoji round trip). */
final class Verdict
{
    public function __construct(public mixed $detail, public bool $ok)
    {
    }
}

function text(mixed $value): ?string
{
    return $value === null ? null : strval($value);
}

function rows_as_text(array $rows): array
{
    return array_map(fn ($row) => array_map('text', array_values($row)), $rows);
}

function env(string $name): string
{
    return (string) getenv($name);
}

function ml_constant_sql(): string
{
    $s = SENTENCE;
    return "SELECT aws_comprehend_detect_sentiment('$s', 'en'),"
        . " aws_comprehend_detect_sentiment_confidence('$s', 'en')";
}

const ML_COLUMN_SQL = "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id";
const BIG_SQL = "SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000";

function big_detail(iterable $rows): array
{
    $count = $sum = $chars = 0;
    foreach ($rows as [$seq, $label]) {
        $count++;
        $sum += (int) $seq;
        $chars += preg_match_all('/./su', $label);  // code points (mbstring may be absent)
    }
    return ['rows' => $count, 'sum' => $sum, 'chars' => $chars];
}

function ml_column_detail(array $rows): array
{
    return ['rows' => count($rows), 'labels' => array_map(fn ($row) => text($row[1]), $rows)];
}

/** mysqli: prepared statements are the server's; parameters otherwise escaped by hand. */
final class MysqliRun
{
    public ?mysqli $conn = null;

    public function __construct()
    {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    }

    public function connect(bool $tls): mysqli
    {
        $conn = mysqli_init();
        $flags = 0;
        if ($tls) {
            $conn->ssl_set(null, null, env('MX_TLS_CA'), null, null);
            $conn->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
            $flags = MYSQLI_CLIENT_SSL;
        }
        $conn->real_connect(env('MX_HOST'), env('MX_USER'), env('MX_PASSWORD'),
            env('MX_DATABASE'), (int) env('MX_PORT'), null, $flags);
        return $conn;
    }

    public function main(): mysqli
    {
        return $this->conn ??= $this->connect(false);
    }

    public function query(string $sql): array
    {
        return $this->main()->query($sql)->fetch_all(MYSQLI_NUM);
    }

    public function prepared(string $sql, string $types, array $params): array
    {
        $stmt = $this->main()->prepare($sql);
        $stmt->bind_param($types, ...$params);
        $stmt->execute();
        $rows = $stmt->get_result()->fetch_all(MYSQLI_NUM);
        $stmt->close();
        return $rows;
    }

    public function steps(): array
    {
        return [
            'connect' => function () {
                $this->conn = $this->connect(false);
                return text($this->query('SELECT CURRENT_USER()')[0][0]);
            },
            'connect_tls' => function () {
                $conn = $this->connect(true);
                $user = $conn->query('SELECT CURRENT_USER()')->fetch_row()[0];
                $conn->close();
                return text($user);
            },
            'params' => fn () => rows_as_text($this->prepared(
                'SELECT ? AS i, ? AS s, ? AS n', 'iss', [42, PARAM_TEXT, null])),
            'server_prepared' => fn () => array_map(
                fn ($start) => rows_as_text($this->prepared(ITEMS_FROM, 'i', [$start])), [2, 8]),
            'client_prepared' => fn () => array_map(
                fn ($start) => rows_as_text($this->query(str_replace(
                    '?', "'" . $this->main()->real_escape_string((string) $start) . "'",
                    ITEMS_FROM))),
                [2, 8]),
            'transaction' => function () {
                $conn = $this->main();
                $conn->query('DELETE FROM scratch');
                $conn->begin_transaction();
                $conn->query("INSERT INTO scratch (id, txt) VALUES (1, 'in a transaction')");
                $inside = $this->query('SELECT COUNT(*) FROM scratch')[0][0];
                $conn->rollback();
                $after = $this->query('SELECT COUNT(*) FROM scratch')[0][0];
                return [text($inside), text($after)];
            },
            'call' => function () {
                $conn = $this->main();
                $conn->multi_query('CALL items_upto(3)');
                $rows = [];
                do {
                    $result = $conn->store_result();
                    if ($result instanceof mysqli_result) {
                        $rows = array_merge($rows, rows_as_text($result->fetch_all(MYSQLI_NUM)));
                        $result->free();
                    }
                } while ($conn->more_results() && $conn->next_result());
                return ['rows' => $rows, 'after' => text($this->query('SELECT 1')[0][0])];
            },
            'big_result' => fn () => big_detail($this->main()->query(BIG_SQL, MYSQLI_USE_RESULT)
                ->fetch_all(MYSQLI_NUM)),
            'emoji' => function () {
                $this->main()->query('DELETE FROM scratch');
                $stmt = $this->main()->prepare('INSERT INTO scratch (id, txt) VALUES (?, ?)');
                $id = 2;
                $value = EMOJI;
                $stmt->bind_param('is', $id, $value);
                $stmt->execute();
                $stmt->close();
                $row = array_map('text',
                    $this->query('SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch')[0]);
                return new Verdict($row, $row[0] === EMOJI);
            },
            'ml_constant' => fn () => rows_as_text($this->query(ml_constant_sql())),
            'ml_column' => fn () => ml_column_detail($this->query(ML_COLUMN_SQL)),
            'error_1146' => function () {
                try {
                    $this->query('SELECT * FROM no_such_table');
                    return new Verdict(['error' => null], false);
                } catch (mysqli_sql_exception $e) {
                    $after = text($this->query('SELECT 1')[0][0]);
                    $detail = ['code' => $e->getCode(), 'sqlstate' => $e->getSqlState(),
                        'after' => $after];
                    return new Verdict($detail, $e->getCode() === 1146);
                }
            },
            'close' => function () {
                $conn = $this->main();
                $this->conn = null;
                $conn->close();
                return null;
            },
        ];
    }

    public function error(Throwable $e): array
    {
        $detail = ['code' => $e->getCode(), 'error' => $e->getMessage()];
        if ($e instanceof mysqli_sql_exception) {
            $detail['sqlstate'] = $e->getSqlState();
        }
        return $detail;
    }

    public function reset(): void
    {
        try {
            $this->conn?->rollback();
            $this->conn?->query('SELECT 1');
        } catch (Throwable $e) {
            $this->conn = null;
        }
    }
}

/** PDO: prepares are emulated (client-side) unless ATTR_EMULATE_PREPARES is off. */
final class PdoRun
{
    public ?PDO $conn = null;

    public function connect(bool $tls, bool $emulate = true): PDO
    {
        $dsn = sprintf('mysql:host=%s;port=%s;dbname=%s;charset=utf8mb4',
            env('MX_HOST'), env('MX_PORT'), env('MX_DATABASE'));
        $options = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_EMULATE_PREPARES => $emulate];
        if ($tls) {
            $options[PDO::MYSQL_ATTR_SSL_CA] = env('MX_TLS_CA');
            $options[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = true;
        }
        return new PDO($dsn, env('MX_USER'), env('MX_PASSWORD'), $options);
    }

    public function main(): PDO
    {
        return $this->conn ??= $this->connect(false);
    }

    public function query(string $sql, ?array $params = null, ?PDO $conn = null): array
    {
        $stmt = ($conn ?? $this->main())->prepare($sql);
        $stmt->execute($params);
        $rows = $stmt->fetchAll(PDO::FETCH_NUM);
        $stmt->closeCursor();
        return $rows;
    }

    public function items(PDO $conn): array
    {
        return array_map(fn ($start) => rows_as_text($this->query(ITEMS_FROM, [$start], $conn)),
            [2, 8]);
    }

    public function steps(): array
    {
        return [
            'connect' => function () {
                $this->conn = $this->connect(false);
                return text($this->query('SELECT CURRENT_USER()')[0][0]);
            },
            'connect_tls' => fn () => text($this->query('SELECT CURRENT_USER()', null,
                $this->connect(true))[0][0]),
            'params' => fn () => rows_as_text($this->query('SELECT ? AS i, ? AS s, ? AS n',
                [42, PARAM_TEXT, null])),
            'server_prepared' => fn () => $this->items($this->connect(false, false)),
            'client_prepared' => fn () => $this->items($this->main()),
            'transaction' => function () {
                $conn = $this->main();
                $conn->exec('DELETE FROM scratch');
                $conn->beginTransaction();
                $this->query('INSERT INTO scratch (id, txt) VALUES (?, ?)', [1, 'in a transaction']);
                $inside = $this->query('SELECT COUNT(*) FROM scratch')[0][0];
                $conn->rollBack();
                $after = $this->query('SELECT COUNT(*) FROM scratch')[0][0];
                return [text($inside), text($after)];
            },
            'call' => function () {
                $stmt = $this->main()->query('CALL items_upto(3)');
                $rows = [];
                do {
                    if ($stmt->columnCount() > 0) {
                        $rows = array_merge($rows, rows_as_text($stmt->fetchAll(PDO::FETCH_NUM)));
                    }
                } while ($stmt->nextRowset());
                $stmt->closeCursor();
                return ['rows' => $rows, 'after' => text($this->query('SELECT 1')[0][0])];
            },
            'big_result' => fn () => big_detail($this->query(BIG_SQL)),
            'emoji' => function () {
                $this->main()->exec('DELETE FROM scratch');
                $this->query('INSERT INTO scratch (id, txt) VALUES (?, ?)', [2, EMOJI]);
                $row = array_map('text',
                    $this->query('SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch')[0]);
                return new Verdict($row, $row[0] === EMOJI);
            },
            'ml_constant' => fn () => rows_as_text($this->query(ml_constant_sql())),
            'ml_column' => fn () => ml_column_detail($this->query(ML_COLUMN_SQL)),
            'error_1146' => function () {
                try {
                    $this->query('SELECT * FROM no_such_table');
                    return new Verdict(['error' => null], false);
                } catch (PDOException $e) {
                    $after = text($this->query('SELECT 1')[0][0]);
                    $code = $e->errorInfo[1] ?? null;
                    $detail = ['code' => $code, 'sqlstate' => $e->errorInfo[0] ?? null,
                        'after' => $after];
                    return new Verdict($detail, $code === 1146);
                }
            },
            'close' => function () {
                $this->conn = null;  // PDO closes when the last reference goes
                return null;
            },
        ];
    }

    public function error(Throwable $e): array
    {
        $detail = ['error' => $e->getMessage()];
        if ($e instanceof PDOException) {
            $detail['code'] = $e->errorInfo[1] ?? null;
            $detail['sqlstate'] = $e->errorInfo[0] ?? null;
        }
        return $detail;
    }

    public function reset(): void
    {
        try {
            if ($this->conn?->inTransaction()) {
                $this->conn->rollBack();
            }
            $this->conn?->query('SELECT 1');
        } catch (Throwable $e) {
            $this->conn = null;
        }
    }
}

function report(string $step, bool $ok, mixed $detail): void
{
    echo json_encode(['step' => $step, 'ok' => $ok, 'detail' => $detail]), "\n";
}

$run = env('MX_DRIVER') === 'pdo' ? new PdoRun() : new MysqliRun();
foreach ($run->steps() as $name => $step) {
    try {
        $result = $step();
    } catch (Throwable $e) {
        report($name, false, $run->error($e));
        $run->reset();
        continue;
    }
    if ($result instanceof Verdict) {
        report($name, $result->ok, $result->detail);
    } else {
        report($name, true, $result);
    }
}

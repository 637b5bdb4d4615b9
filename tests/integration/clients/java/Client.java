// The client matrix's steps (../README.md) with MariaDB Connector/J (JDBC).
// Run with `java -cp mariadb-java-client.jar Client.java`; prints one JSON line per step.

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Client {
    static final String EMOJI = "😀 ok 🎉 ünï";
    static final String PARAM_TEXT = "it's \"q\" \\ ünï 😀";
    static final String ITEMS_FROM =
        "SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3";
    static final String SENTENCE = "I love this, thank you!";

    interface Step {
        Object run() throws Exception;
    }

    /** A step's detail with its own verdict (the error step, the emoji round trip). */
    record Verdict(Object detail, boolean ok) {}

    static Connection conn;

    static String url(String options) {
        String base = "jdbc:mariadb://" + System.getenv("MX_HOST") + ":" + System.getenv("MX_PORT")
            + "/" + System.getenv("MX_DATABASE");
        return options.isEmpty() ? base : base + "?" + options;
    }

    static Connection connect(String options) throws SQLException {
        return DriverManager.getConnection(
            url(options), System.getenv("MX_USER"), System.getenv("MX_PASSWORD"));
    }

    static Connection main() throws SQLException {
        if (conn == null) conn = connect("");
        return conn;
    }

    static List<List<String>> rows(ResultSet rs) throws SQLException {
        List<List<String>> out = new ArrayList<>();
        int columns = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int i = 1; i <= columns; i++) row.add(rs.getString(i));
            out.add(row);
        }
        rs.close();
        return out;
    }

    static List<List<String>> query(String sql) throws SQLException {
        try (Statement st = main().createStatement()) {
            return rows(st.executeQuery(sql));
        }
    }

    static void update(String sql) throws SQLException {
        try (Statement st = main().createStatement()) {
            st.executeUpdate(sql);
        }
    }

    static Object items(Connection c) throws SQLException {
        List<Object> results = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(ITEMS_FROM)) {
            for (int start : new int[] {2, 8}) {
                ps.setInt(1, start);
                results.add(rows(ps.executeQuery()));
            }
        }
        return results;
    }

    static Map<String, Step> steps() {
        Map<String, Step> steps = new LinkedHashMap<>();
        steps.put("connect", () -> {
            conn = connect("");
            return query("SELECT CURRENT_USER()").get(0).get(0);
        });
        steps.put("connect_tls", () -> {
            String ca = System.getenv("MX_TLS_CA");
            try (Connection c = connect("useSsl=true&serverSslCert=" + ca);
                 Statement st = c.createStatement()) {
                return rows(st.executeQuery("SELECT CURRENT_USER()")).get(0).get(0);
            }
        });
        steps.put("params", () -> {
            try (PreparedStatement ps = main().prepareStatement("SELECT ? AS i, ? AS s, ? AS n")) {
                ps.setInt(1, 42);
                ps.setString(2, PARAM_TEXT);
                ps.setNull(3, Types.VARCHAR);
                return rows(ps.executeQuery());
            }
        });
        // Connector/J prepares on the client unless asked (useServerPrepStmts).
        steps.put("server_prepared", () -> {
            try (Connection c = connect("useServerPrepStmts=true")) {
                return items(c);
            }
        });
        steps.put("client_prepared", () -> items(main()));
        steps.put("transaction", () -> {
            Connection c = main();
            update("DELETE FROM scratch");
            c.setAutoCommit(false);
            try {
                update("INSERT INTO scratch (id, txt) VALUES (1, 'in a transaction')");
                String inside = query("SELECT COUNT(*) FROM scratch").get(0).get(0);
                c.rollback();
                String after = query("SELECT COUNT(*) FROM scratch").get(0).get(0);
                return List.of(inside, after);
            } finally {
                c.setAutoCommit(true);
            }
        });
        steps.put("call", () -> {
            List<List<String>> all = new ArrayList<>();
            try (Statement st = main().createStatement()) {
                boolean isResult = st.execute("CALL items_upto(3)");
                while (true) {
                    if (isResult) {
                        all.addAll(rows(st.getResultSet()));
                    } else if (st.getUpdateCount() == -1) {
                        break;
                    }
                    isResult = st.getMoreResults();
                }
            }
            Map<String, Object> detail = new LinkedHashMap<>();
            detail.put("rows", all);
            detail.put("after", query("SELECT 1").get(0).get(0));
            return detail;
        });
        steps.put("big_result", () -> {
            long count = 0, sum = 0, chars = 0;
            try (Statement st = main().createStatement();
                 ResultSet rs = st.executeQuery(
                     "SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000")) {
                while (rs.next()) {
                    count++;
                    sum += rs.getLong(1);
                    String label = rs.getString(2);
                    chars += label.codePointCount(0, label.length());
                }
            }
            Map<String, Object> detail = new LinkedHashMap<>();
            detail.put("rows", count);
            detail.put("sum", sum);
            detail.put("chars", chars);
            return detail;
        });
        steps.put("emoji", () -> {
            update("DELETE FROM scratch");
            try (PreparedStatement ps =
                     main().prepareStatement("INSERT INTO scratch (id, txt) VALUES (?, ?)")) {
                ps.setInt(1, 2);
                ps.setString(2, EMOJI);
                ps.executeUpdate();
            }
            List<String> row = query("SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch").get(0);
            return new Verdict(row, EMOJI.equals(row.get(0)));
        });
        steps.put("ml_constant", () -> query(
            "SELECT aws_comprehend_detect_sentiment('" + SENTENCE + "', 'en'),"
            + " aws_comprehend_detect_sentiment_confidence('" + SENTENCE + "', 'en')"));
        steps.put("ml_column", () -> {
            List<List<String>> rows = query(
                "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id");
            List<String> labels = new ArrayList<>();
            for (List<String> row : rows) labels.add(row.get(1));
            Map<String, Object> detail = new LinkedHashMap<>();
            detail.put("rows", rows.size());
            detail.put("labels", labels);
            return detail;
        });
        steps.put("error_1146", () -> {
            SQLException found;
            try {
                query("SELECT * FROM no_such_table");
                return new Verdict(Map.of(), false);
            } catch (SQLException e) {
                found = e;
            }
            Map<String, Object> detail = new LinkedHashMap<>();
            detail.put("code", found.getErrorCode());
            detail.put("sqlstate", found.getSQLState());
            detail.put("after", query("SELECT 1").get(0).get(0));
            return new Verdict(detail, found.getErrorCode() == 1146);
        });
        steps.put("close", () -> {
            Connection c = main();
            conn = null;
            c.close();
            return null;
        });
        return steps;
    }

    static void report(String step, boolean ok, Object detail) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", step);
        line.put("ok", ok);
        line.put("detail", detail);
        StringBuilder out = new StringBuilder();
        json(line, out);
        System.out.println(out);
        System.out.flush();
    }

    static void reset() {
        if (conn == null) return;
        try {
            if (!conn.getAutoCommit()) conn.rollback();
            conn.setAutoCommit(true);
            query("SELECT 1");
        } catch (SQLException e) {
            try {
                conn.close();
            } catch (SQLException ignored) {
                // the connection is gone either way
            }
            conn = null;
        }
    }

    public static void main(String[] args) {
        for (Map.Entry<String, Step> entry : steps().entrySet()) {
            try {
                Object result = entry.getValue().run();
                if (result instanceof Verdict verdict) {
                    report(entry.getKey(), verdict.ok(), verdict.detail());
                } else {
                    report(entry.getKey(), true, result);
                }
            } catch (Exception e) {
                Map<String, Object> detail = new LinkedHashMap<>();
                if (e instanceof SQLException sql) {
                    detail.put("code", sql.getErrorCode());
                    detail.put("sqlstate", sql.getSQLState());
                }
                detail.put("error", String.valueOf(e));
                report(entry.getKey(), false, detail);
                reset();
            }
        }
    }

    // -- a small JSON writer: maps, lists, strings, numbers, booleans, null --------------------

    static void json(Object value, StringBuilder out) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof Map<?, ?> map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!first) out.append(", ");
                first = false;
                json(String.valueOf(e.getKey()), out);
                out.append(": ");
                json(e.getValue(), out);
            }
            out.append('}');
        } else if (value instanceof Collection<?> list) {
            out.append('[');
            boolean first = true;
            for (Object item : list) {
                if (!first) out.append(", ");
                first = false;
                json(item, out);
            }
            out.append(']');
        } else if (value instanceof Number || value instanceof Boolean) {
            out.append(value);
        } else {
            String s = value.toString();
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c == '"' || c == '\\') {
                    out.append('\\').append(c);
                } else if (c < 0x20 || c > 0x7e) {
                    out.append(String.format("\\u%04x", (int) c));
                } else {
                    out.append(c);
                }
            }
            out.append('"');
        }
    }

    static {
        // Keep the output ASCII whatever the platform's default charset (escapes above).
        System.setOut(new java.io.PrintStream(System.out, true, StandardCharsets.US_ASCII));
    }
}

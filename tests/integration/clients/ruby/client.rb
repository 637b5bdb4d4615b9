# The client matrix's steps (../README.md) with Ruby's mysql2 (on MariaDB Connector/C).
# Prints one JSON line per step.
require 'bigdecimal'
require 'json'
require 'mysql2'

EMOJI = '😀 ok 🎉 ünï'
PARAM_TEXT = "it's \"q\" \\ ünï 😀"
ITEMS_FROM = 'SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3'
SENTENCE = 'I love this, thank you!'

# A step's detail with its own judgement (the error step, the emoji round trip).
Verdict = Struct.new(:detail, :ok)

def text(value)
  return nil if value.nil?
  return value.to_s('F') if value.is_a?(BigDecimal)

  value.to_s
end

def rows_as_text(rows)
  rows.map { |row| row.map { |value| text(value) } }
end

class Run
  def initialize
    @conn = nil
  end

  # mysql2's default encoding is utf8 (three bytes): an emoji needs utf8mb4.
  def connect(tls)
    options = { host: ENV['MX_HOST'], port: ENV['MX_PORT'].to_i, username: ENV['MX_USER'],
                password: ENV['MX_PASSWORD'], database: ENV['MX_DATABASE'], encoding: 'utf8mb4' }
    # sslverify checks the certificate and the host name (Connector/C has no ssl_mode).
    options.merge!(sslca: ENV['MX_TLS_CA'], sslverify: true) if tls
    Mysql2::Client.new(options)
  end

  def main
    @conn ||= connect(false)
  end

  # Text results as the server sent them (cast: false), so a changed value shows.
  def query(sql)
    result = main.query(sql, as: :array, cast: false)
    result ? result.to_a : []
  end

  def prepared(sql, *params)
    stmt = main.prepare(sql)
    rows = stmt.execute(*params, as: :array).to_a
    stmt.close
    rows
  end

  def steps
    {
      'connect' => lambda {
        @conn = connect(false)
        text(query('SELECT CURRENT_USER()')[0][0])
      },
      'connect_tls' => lambda {
        conn = connect(true)
        begin
          text(conn.query('SELECT CURRENT_USER()', as: :array).to_a[0][0])
        ensure
          conn.close
        end
      },
      'params' => -> { rows_as_text(prepared('SELECT ? AS i, ? AS s, ? AS n', 42, PARAM_TEXT, nil)) },
      'server_prepared' => -> { [2, 8].map { |start| rows_as_text(prepared(ITEMS_FROM, start)) } },
      'client_prepared' => lambda {
        [2, 8].map do |start|
          rows_as_text(query(ITEMS_FROM.sub('?', "'#{main.escape(start.to_s)}'")))
        end
      },
      'transaction' => lambda {
        query('DELETE FROM scratch')
        query('START TRANSACTION')
        query("INSERT INTO scratch (id, txt) VALUES (1, 'in a transaction')")
        inside = query('SELECT COUNT(*) FROM scratch')[0][0]
        query('ROLLBACK')
        after = query('SELECT COUNT(*) FROM scratch')[0][0]
        [text(inside), text(after)]
      },
      'call' => lambda {
        rows = rows_as_text(query('CALL items_upto(3)'))
        while main.next_result
          result = main.store_result
          rows += rows_as_text(result.to_a) if result
        end
        { 'rows' => rows, 'after' => text(query('SELECT 1')[0][0]) }
      },
      'big_result' => lambda {
        rows = query("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000")
        { 'rows' => rows.length, 'sum' => rows.sum { |seq, _| seq.to_i },
          'chars' => rows.sum { |_, label| label.length } }
      },
      'emoji' => lambda {
        query('DELETE FROM scratch')
        main.prepare('INSERT INTO scratch (id, txt) VALUES (?, ?)').execute(2, EMOJI)
        row = query('SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch')[0].map { |v| text(v) }
        Verdict.new(row, row[0] == EMOJI)
      },
      'ml_constant' => lambda {
        rows_as_text(query("SELECT aws_comprehend_detect_sentiment('#{SENTENCE}', 'en'), " \
                           "aws_comprehend_detect_sentiment_confidence('#{SENTENCE}', 'en')"))
      },
      'ml_column' => lambda {
        rows = query("SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id")
        { 'rows' => rows.length, 'labels' => rows.map { |row| text(row[1]) } }
      },
      'error_1146' => lambda {
        begin
          query('SELECT * FROM no_such_table')
          Verdict.new({ 'error' => nil }, false)
        rescue Mysql2::Error => e
          detail = { 'code' => e.error_number, 'sqlstate' => e.sql_state,
                     'after' => text(query('SELECT 1')[0][0]) }
          Verdict.new(detail, e.error_number == 1146)
        end
      },
      'close' => lambda {
        conn = main
        @conn = nil
        conn.close
        nil
      }
    }
  end

  def reset
    return if @conn.nil?

    begin
      @conn.query('ROLLBACK')
      @conn.query('SELECT 1')
    rescue StandardError
      @conn = nil
    end
  end

  def run
    steps.each do |name, step|
      begin
        result = step.call
      rescue StandardError => e
        detail = { 'error' => "#{e.class}: #{e.message}" }
        detail.merge!('code' => e.error_number, 'sqlstate' => e.sql_state) if e.is_a?(Mysql2::Error)
        report(name, false, detail)
        reset
        next
      end
      if result.is_a?(Verdict)
        report(name, result.ok, result.detail)
      else
        report(name, true, result)
      end
    end
  end

  def report(step, ok, detail)
    puts JSON.generate({ 'step' => step, 'ok' => ok, 'detail' => detail })
    $stdout.flush
  end
end

Run.new.run

-- sysbench script: every event opens a connection (handshake and login) and closes it
-- (COM_QUIT), so "transactions per second" is connections opened and closed per second.

function thread_init()
  drv = sysbench.sql.driver()
end

function event()
  local con = drv:connect()
  con:disconnect()
end

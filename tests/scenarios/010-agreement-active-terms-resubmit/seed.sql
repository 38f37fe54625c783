-- The school accepted the agreement.
UPDATE agreements SET status = 'active' WHERE key = 'state-2027'

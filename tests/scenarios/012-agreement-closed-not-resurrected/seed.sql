-- The school rejected the agreement.
UPDATE agreements SET status = 'closed' WHERE key = 'state-2027'
